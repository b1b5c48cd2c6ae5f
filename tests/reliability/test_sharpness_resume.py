"""Kill -9 mid-epoch with the sharpness probe on, resume: training ends bit-for-bit where
an uninterrupted run with the probe ends, and sharpness.csv holds each probed step once."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EVERY = 8

SCRIPT = textwrap.dedent(f"""
    import os, signal, sys
    import keras
    from common.training import run_training
    from tests.toy_domain import TOY, ToyConfig

    class KillMidEpoch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 20 and self._epoch == 1:
                os.kill(os.getpid(), signal.SIGKILL)
        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

    output, name, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    cfg = ToyConfig(epochs=3, optimizer="momentum", learning_rate=0.05, output=output,
                    run_name=name, verbose=0, deterministic=True, resume=(mode == "resume"),
                    monitor_every=0, sharpness_every={EVERY})
    run_training(TOY, cfg, extra_callbacks=[KillMidEpoch()] if mode == "kill" else [])
""")


def run_script(tmp_path, *args):
    script = tmp_path / "train_toy.py"
    script.write_text(SCRIPT)
    return subprocess.run([sys.executable, str(script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                               "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"})


def sharpness_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "sharpness.csv").open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_resume_with_the_probe_on_matches_an_uninterrupted_run(tmp_path):
    killed = run_script(tmp_path, str(tmp_path), "cut", "kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    run_dir = tmp_path / "toy" / "cut"
    # Readings past the last finished epoch (epoch 1's steps 32..52) were written...
    assert max(int(r["step"]) for r in sharpness_rows(run_dir)) > 32
    resumed = run_script(tmp_path, str(tmp_path), "cut", "resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = run_script(tmp_path, str(tmp_path), "straight", "plain")
    assert straight.returncode == 0, straight.stderr[-2000:]

    a = json.loads((run_dir / "summary.json").read_text())
    b = json.loads((tmp_path / "toy" / "straight" / "summary.json").read_text())
    assert a["history"]["loss"] == b["history"]["loss"]  # bit for bit
    assert a["test_loss"] == b["test_loss"]
    # ... and dropped on resume: every probed step once, the same steps as the straight run.
    cut, whole = sharpness_rows(run_dir), sharpness_rows(tmp_path / "toy" / "straight")
    steps = [int(r["step"]) for r in cut]
    assert steps == [int(r["step"]) for r in whole] == list(range(0, 96, EVERY))
    for x, y in zip(cut, whole, strict=True):
        # Same weights; only the warm start differs after the restart.
        assert float(x["sharpness"]) == pytest.approx(float(y["sharpness"]), rel=1e-2)
    assert len(a["sharpness"]["records"]) == len(steps)
