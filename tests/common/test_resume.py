"""Kill -9 mid-epoch, resume, and end where an uninterrupted run ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import keras
    from common.training import run_training
    from tests.toy_domain import TOY, ToyConfig

    class KillMidEpoch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.params and batch == 5 and self._epoch == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

    output, name, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    cfg = ToyConfig(epochs=4, learning_rate=0.05, output=output, run_name=name, verbose=0,
                    deterministic=True, resume=(mode == "resume"), monitor_every=0)
    run_training(TOY, cfg, extra_callbacks=[KillMidEpoch()] if mode == "kill" else [])
""")


def run_script(tmp_path, *args):
    script = tmp_path / "train_toy.py"
    script.write_text(SCRIPT)
    return subprocess.run([sys.executable, str(script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                                       "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_resume_after_kill_9_matches_an_uninterrupted_run(tmp_path):
    killed = run_script(tmp_path, str(tmp_path), "interrupted", "kill")
    assert killed.returncode == -signal.SIGKILL
    run_dir = tmp_path / "toy" / "interrupted"
    partial = json.loads((run_dir / "summary.json").read_text())
    assert partial["status"] == "running" and partial["epochs_run"] == 2  # epochs 0 and 1 done

    resumed = run_script(tmp_path, str(tmp_path), "interrupted", "resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = run_script(tmp_path, str(tmp_path), "straight", "plain")
    assert straight.returncode == 0, straight.stderr[-2000:]
    a = json.loads((run_dir / "summary.json").read_text())
    b = json.loads((tmp_path / "toy" / "straight" / "summary.json").read_text())
    assert a["status"] == "completed" and a["epochs_run"] == 4
    assert a["history"]["loss"] == pytest.approx(b["history"]["loss"], rel=1e-6)
    assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-6)
    steps = (run_dir / "steps.csv").read_text().splitlines()
    assert len(steps) == 1 + 4 * a["steps_per_epoch"]  # no step recorded twice


def test_resume_needs_an_existing_run(tmp_path):
    from common.errors import UserError
    from common.training import run_training
    from tests.toy_domain import TOY, ToyConfig

    with pytest.raises(UserError, match="no run to resume"):
        run_training(TOY, ToyConfig(output=str(tmp_path), run_name="ghost", resume=True))
