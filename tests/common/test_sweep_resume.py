"""A sweep killed with SIGKILL in the middle of a run, then run again: the finished runs
are read back, the cut one resumes from its last epoch, and the report equals the report
of a sweep that was never interrupted."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CUT_RUN = "rate-02-0.1"

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import keras
    import common.resumable as resumable
    import common.sweep as sweep_module
    from common.reporting import write_sweep_report
    from tests.toy_domain import TOY, ToyConfig

    class KillInSecondEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if self._epoch == 1 and batch == 3:
                os.kill(os.getpid(), signal.SIGKILL)

    folder, mode = Path(sys.argv[1]), sys.argv[2]
    train = resumable.run_training

    def run_training(domain, cfg, **kwargs):
        if mode == "kill" and Path(kwargs["run_root"]).name == "CUT_RUN":
            kwargs["extra_callbacks"] = [KillInSecondEpoch()]
        return train(domain, cfg, **kwargs)

    resumable.run_training = run_training
    cfg = ToyConfig(epochs=3, output=str(folder), verbose=0, deterministic=True,
                    monitor_every=0)
    sweep_module.Sweep(TOY, cfg, folder, rates=[1e-3, 1e-2, 1e-1],
                       schedules=("constant", "cosine"), optimizers=("sgd", "momentum"),
                       range_test_steps=30).run()
    write_sweep_report(folder)
""").replace("CUT_RUN", CUT_RUN)


def _sweep(tmp_path: Path, folder: Path, mode: str) -> subprocess.CompletedProcess:
    script = tmp_path / "sweep.py"
    script.write_text(SCRIPT)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3",
           "KERAS_BACKEND": "tensorflow"}
    return subprocess.run([sys.executable, str(script), str(folder), mode], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env=env)


def _without_times(text: str) -> str:
    """The report with its wall times blanked: the last column of a table whose header
    ends in 'wall s (mean)', and times in the text."""
    lines, timed = [], False
    for line in text.splitlines():
        if line.startswith("|"):
            timed = timed or line.rstrip().endswith("wall s (mean) |")
            if timed:
                line = line.rstrip().rsplit("|", 2)[0] + "|"
        else:
            timed = False
        lines.append(re.sub(r"\d+(\.\d+)? ?(s|min)\b", "<time>", line))
    return "\n".join(lines)


def test_a_killed_sweep_resumes_without_repeating_and_reports_the_same(tmp_path):
    cut, straight = tmp_path / "cut", tmp_path / "straight"
    killed = _sweep(tmp_path, cut, "kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    finished = {p.parent.parent.name for p in cut.glob("rate-*/seed-42/summary.json")
                if json.loads(p.read_text())["status"] == "completed"}
    assert finished == {"rate-00-0.001", "rate-01-0.01"}
    stamps = {name: (cut / name / "seed-42" / "summary.json").stat().st_mtime_ns
              for name in finished}

    again = _sweep(tmp_path, cut, "resume")
    assert again.returncode == 0, again.stderr[-2000:]
    assert {name: (cut / name / "seed-42" / "summary.json").stat().st_mtime_ns
            for name in finished} == stamps  # read back, not run again
    for name in finished:
        assert f"{name} seed 42: completed" in again.stdout and "(done before)" in again.stdout
    resumed = json.loads((cut / CUT_RUN / "seed-42" / "summary.json").read_text())
    assert resumed["status"] == "completed" and resumed["epochs_run"] == 3

    plain = _sweep(tmp_path, straight, "plain")
    assert plain.returncode == 0, plain.stderr[-2000:]
    for path in sorted(straight.glob("*/seed-42/summary.json")):
        relative = path.relative_to(straight)
        a, b = json.loads((cut / relative).read_text()), json.loads(path.read_text())
        assert a["history"] == b["history"], path.parent.name
        assert a.get("test_loss") == b.get("test_loss"), path.parent.name
        assert a.get("diagnosis", {}).get("verdict") == b.get("diagnosis", {}).get("verdict")
    report_cut = _without_times((cut / "report.md").read_text()).replace(str(cut), "<dir>")
    report_plain = _without_times((straight / "report.md").read_text()).replace(
        str(straight), "<dir>")
    assert report_cut == report_plain
