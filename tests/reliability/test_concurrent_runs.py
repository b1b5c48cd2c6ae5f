"""Two `lrsuite train` processes started at once with one --run-name get a directory each.

tests/common/test_runs.py covers create_run_dir with threads in one process; this is the
same promise for two real processes, each of which must also write only into its own
directory (config, summary, steps, model).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.reliability.conftest import TINY, start_lrsuite

SEEDS = (11, 22)


def test_two_processes_with_one_run_name_never_share_a_directory(tmp_path, demo_data):
    output = tmp_path / "runs"
    processes = [
        start_lrsuite("train", "sentiment", "--data", demo_data["sentiment"], "--output", output,
                      "--run-name", "same", "--seed", seed, *TINY, "--steps-per-epoch", "4")
        for seed in SEEDS
    ]
    finished = [process.communicate(timeout=300) for process in processes]
    for process, (stdout, stderr) in zip(processes, finished, strict=True):
        assert process.returncode == 0, f"stdout: {stdout[-1500:]}\nstderr: {stderr[-3000:]}"
    assert sorted(p.name for p in (output / "sentiment").iterdir()) == ["same", "same-2"]
    announced = []
    for seed, (stdout, _) in zip(SEEDS, finished, strict=True):
        (line,) = re.findall(r"^run directory: (.+)$", stdout, re.MULTILINE)
        run_dir = Path(line)
        announced.append(run_dir)
        # Everything in the directory is this process's: its seed, its path, its steps.
        config = json.loads((run_dir / "config.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        assert config["seed"] == summary["seed"] == seed
        assert summary["run_dir"] == str(run_dir) and summary["status"] == "completed"
        assert summary["steps_run"] == 4
        assert len((run_dir / "steps.csv").read_text().splitlines()) == 1 + 4
        assert (run_dir / "model.keras").is_file()
    assert sorted(announced) == [output / "sentiment" / "same", output / "sentiment" / "same-2"]
