"""Run directories: unique names, atomic JSON, no clobbering."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor

from common.runs import create_run_dir, default_run_name, read_json, write_json


def test_same_name_twice_gets_two_directories(tmp_path):
    first = create_run_dir(tmp_path, "exp")
    second = create_run_dir(tmp_path, "exp")
    assert first != second and first.name == "exp" and second.name == "exp-2"


def test_concurrent_runs_with_one_name_never_share_a_directory(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        dirs = list(pool.map(lambda _: create_run_dir(tmp_path, "same"), range(16)))
    assert len(set(dirs)) == 16


def test_default_name_says_optimizer_schedule_and_rate():
    name = default_run_name("adam", "cosine", 3e-4)
    assert name.endswith("-adam-cosine-lr3e-04")


def test_write_json_is_atomic_and_keeps_nan_readable(tmp_path):
    path = tmp_path / "summary.json"
    write_json(path, {"val_loss": math.nan, "ok": 1})
    data = json.loads(path.read_text())
    assert data == {"val_loss": "nan", "ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left
    assert read_json(path)["ok"] == 1


def test_json_files_follow_the_umask_like_every_other_file(tmp_path):
    import os
    import stat

    from common.runs import write_json

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "summary.json", {"a": 1})
        (tmp_path / "steps.csv").write_text("step\n")
    finally:
        os.umask(old)
    modes = {stat.S_IMODE((tmp_path / n).stat().st_mode) for n in ("summary.json", "steps.csv")}
    assert modes == {0o644}
