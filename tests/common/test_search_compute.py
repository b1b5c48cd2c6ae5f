"""The compute section of a search report, checked against the trials' own records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from common.runs import write_json
from common.search_compute import compute_figures, write_compute_section
from common.tuning import run_search
from tests.toy_domain import TOY

FAST = {"monitor_every": 0, "log_lr_every": 0, "steps_per_epoch": 8}


def read(path: Path):
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="module")
def pruned_search(tmp_path_factory):
    output = tmp_path_factory.mktemp("compute")
    space = {"learning_rate": {"values": [0.1, 0.05, 1e-9]},
             "schedule": {"values": ["constant"]}}
    return run_search(TOY, fixed={"output": str(output), **FAST}, tuner="grid", max_trials=3,
                      max_epochs=3, space=space, announce=False, prune="median")


def test_figures_match_the_trials_run_directories_and_records(pruned_search):
    search_dir = pruned_search.search_dir
    compute = read(search_dir / "best.json")["compute"]
    assert compute == read(search_dir / "compute.json")
    records = pruned_search.records
    epochs = {r["trial"]: read(Path(r["run_dirs"][0]) / "summary.json")["epochs_run"]
              for r in records}
    assert compute["epochs"] == sum(epochs.values())
    assert compute["wall_time_s"] == pytest.approx(sum(r["wall_time_s"] for r in records))
    for status in ("completed", "pruned", "failed"):
        mine = [r for r in records if r["status"] == status]
        row = compute["by_status"][status]
        assert row["trials"] == len(mine)
        assert row["epochs"] == sum(epochs[r["trial"]] for r in mine)
        assert row["wall_time_s"] == pytest.approx(sum(r["wall_time_s"] for r in mine))
    assert compute["by_status"]["pruned"]["trials"] == 1  # the planted 1e-9 rate
    assert compute["by_status"]["pruned"]["epochs"] == 1
    # The anytime curve: trials in the order they ended, cumulative epochs, best so far.
    ends = [json.loads(line) for line in (search_dir / "events.jsonl").read_text().splitlines()]
    order = [e["trial"] for e in ends if e["event"] == "end"]
    assert [p["trial"] for p in compute["anytime"]] == order
    by_trial = {r["trial"]: r for r in records}
    spent, best = 0, math.inf
    for point in compute["anytime"]:
        spent += epochs[point["trial"]]
        best = min(best, by_trial[point["trial"]]["score"])
        assert point["epochs"] == spent and point["best"] == pytest.approx(best)
    assert (search_dir / "compute_anytime.png").stat().st_size > 0
    text = (search_dir / "compute.txt").read_text()
    assert f"total: {compute['epochs']} epochs" in text and "pruned: 1 trials, 1 epochs" in text


def test_failed_and_diverged_trials_count_their_cost_but_not_their_score(tmp_path):
    run_dir = tmp_path / "trials" / "trial_2"
    write_json(run_dir / "summary.json", {"epochs_run": 2})
    records = [
        {"trial": "0", "status": "completed", "score": 0.5, "epochs_run": 3, "wall_time_s": 1.0},
        {"trial": "1", "status": "failed", "score": None, "wall_time_s": 0.25},
        {"trial": "2", "status": "diverged", "score": math.inf, "run_dirs": [str(run_dir)],
         "wall_time_s": 0.5},
        {"trial": "3", "status": "pruned", "score": 0.25, "epochs_run": 1, "wall_time_s": 0.5},
    ]
    figures, text = write_compute_section(tmp_path, records, "min", "val_loss")
    assert figures["epochs"] == 3 + 0 + 2 + 1 and figures["wall_time_s"] == 2.25
    assert figures["by_status"]["diverged"] == {"trials": 1, "epochs": 2, "wall_time_s": 0.5}
    assert figures["by_status"]["failed"] == {"trials": 1, "epochs": 0, "wall_time_s": 0.25}
    assert [p["best"] for p in figures["anytime"]] == [0.5, 0.5, 0.5, 0.25]
    assert [p["epochs"] for p in figures["anytime"]] == [3, 3, 5, 6]
    assert "diverged: 1 trials, 2 epochs" in text
    maximised = compute_figures(tmp_path, records[:1] + records[3:], "max")
    assert [p["best"] for p in maximised["anytime"]] == [0.5, 0.5]
