"""Resume is exact with the domains' own layers (dropout, augmentation), refuses a
command that differs from the run's own, and numbers steps on from where it stopped."""

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

SCRIPT = textwrap.dedent("""
    import importlib, os, signal, sys
    from pathlib import Path
    import keras
    from common.domain import get_domain
    from common.training import run_training

    class KillInThirdEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if self._epoch == 2 and batch == 1:  # two whole epochs are done
                os.kill(os.getpid(), signal.SIGKILL)

    name, data, output, run_name, mode = sys.argv[1:6]
    domain = get_domain(name)
    cfg = domain.config_cls.smoke(data=data, output=output, run_name=run_name, epochs=4,
                                  verbose=0, resume=(mode == "resume"))
    run_training(domain, cfg, extra_callbacks=[KillInThirdEpoch()] if mode == "kill" else [])
""")


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3",
           "KERAS_BACKEND": "tensorflow"}
    return subprocess.run([sys.executable, str(script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=env)


def _steps(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "steps.csv").open(newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.parametrize("domain_name", ["sentiment", "image_classification"])
def test_kill_9_and_resume_is_bit_identical_with_dropout_and_augmentation(tmp_path,
                                                                           domain_name):
    import importlib

    demo = importlib.import_module(f"domains.{domain_name}.demo")
    data = str(demo.write_demo_data(tmp_path / "data"))
    output = str(tmp_path / "runs")
    killed = _run(tmp_path, domain_name, data, output, "cut", "kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    cut = tmp_path / "runs" / domain_name / "cut"
    assert json.loads((cut / "summary.json").read_text())["epochs_run"] == 2
    resumed = _run(tmp_path, domain_name, data, output, "cut", "resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = _run(tmp_path, domain_name, data, output, "straight", "plain")
    assert straight.returncode == 0, straight.stderr[-2000:]

    a = json.loads((cut / "summary.json").read_text())
    b = json.loads((tmp_path / "runs" / domain_name / "straight" / "summary.json").read_text())
    assert a["status"] == b["status"] == "completed"
    assert a["history"] == b["history"]  # every metric of every epoch, exactly
    tests = sorted(k for k in b if k.startswith("test_") and isinstance(b[k], float))
    assert tests and all(a[k] == b[k] for k in tests), tests
    steps_a, steps_b = _steps(cut), _steps(cut.parent / "straight")
    assert [r["step"] for r in steps_a] == [str(i) for i in range(len(steps_b))]
    assert steps_a == steps_b  # rates and per-step losses of the resumed epochs too


def _toy_run(tmp_path, **changes):
    from common.training import run_training
    from tests.toy_domain import TOY, ToyConfig

    values = {"output": str(tmp_path), "run_name": "g", "verbose": 0, "epochs": 2,
              "monitor_every": 0, **changes}
    cfg = ToyConfig(**values)
    return run_training(TOY, cfg, announce=False)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_resume_with_other_flags_is_refused_and_touches_nothing(tmp_path):
    from common.errors import UserError

    run_dir = _toy_run(tmp_path).run_dir
    before = _snapshot(run_dir)
    with pytest.raises(UserError, match=r"learning_rate \(run: 0.1, now: 0.5\)"):
        _toy_run(tmp_path, resume=True, learning_rate=0.5, epochs=3)
    with pytest.raises(UserError, match="optimizer"):
        _toy_run(tmp_path, resume=True, optimizer="adam")
    with pytest.raises(UserError, match="epochs"):
        _toy_run(tmp_path, resume=True, epochs=1)  # fewer epochs than it ran
    assert _snapshot(run_dir) == before


def test_resume_with_more_epochs_extends_the_run_and_says_so(tmp_path):
    first = _toy_run(tmp_path).run_dir
    assert not list((first / "backup").glob("latest.weights.h5*"))  # model.keras holds them
    assert (first / "backup" / "training_metadata.json").is_file()
    summary = _toy_run(tmp_path, resume=True, epochs=4).summary
    straight = _toy_run(tmp_path / "straight", epochs=4).summary
    assert summary["history"] == straight["history"]  # as if planned for 4 from the start
    assert summary["epochs_run"] == 4 and summary["status"] == "completed"
    assert summary["budget_changes"] == [{"field": "epochs", "from": 2, "to": 4,
                                          "at_epoch": 2}]
    steps = [int(r["step"]) for r in _steps(Path(summary["run_dir"]))]
    assert steps == list(range(4 * summary["steps_per_epoch"]))  # numbered on, not from 0
