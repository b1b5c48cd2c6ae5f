"""--strategy: mirrored training on two logical CPU devices, against the default run.

Every training run is its own process: the CPU can only be split into logical devices
before TensorFlow starts, which in the pytest process has long happened.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from common import cli

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3",
       "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""}  # CPU replicas even on a GPU box

TOY_SCRIPT = textwrap.dedent("""
    import dataclasses, sys
    import tensorflow as tf
    from common.distribute import prepare_devices
    from common.training import run_training
    from tests.toy_domain import TOY, ToyConfig

    output, name, strategy, cpu_devices = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    cfg = ToyConfig(epochs=2, steps_per_epoch=6, learning_rate=0.05, output=output,
                    run_name=name, verbose=0, monitor_every=3, strategy=strategy,
                    cpu_devices=cpu_devices)
    prepare_devices(cpu_devices)  # before the data: it starts TensorFlow
    bundle = TOY.load_data(cfg)
    # Under a strategy Keras reads one batch to build the model before fit's own pass,
    # and a reshuffling pipeline then serves another order; unshuffled, both see the same.
    x, y = next(iter(bundle.train.unbatch().batch(cfg.examples)))
    def make_train():
        return tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(cfg.batch_size)

    bundle = dataclasses.replace(bundle, train=make_train(), make_train=make_train)
    run_training(TOY, cfg, bundle=bundle, save_model=False)
""")


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=ENV, **kwargs)


def _train_sentiment(tmp_path: Path, data: Path, name: str, *flags: str) -> dict:
    result = _run(["-m", "common.cli", "train", "sentiment", "--smoke", "--data", str(data),
                   "--output", str(tmp_path), "--run-name", name, "--verbose", "0", *flags])
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((tmp_path / "sentiment" / name / "summary.json").read_text())


def _metrics(summary: dict) -> dict[str, float]:
    return {k: v for k, v in summary.items() if k.startswith(("train_", "val_", "test_"))}


def _step_rows(run_dir: Path) -> list[str]:
    return (run_dir / "steps.csv").read_text().splitlines()


def _event_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("events.out.tfevents.*"))


def test_mirrored_sentiment_run_uses_two_replicas_and_reports_like_the_default(
        tmp_path, sentiment_folder):
    plain = _train_sentiment(tmp_path, sentiment_folder, "plain")
    mirrored = _train_sentiment(tmp_path, sentiment_folder, "mirrored",
                                "--strategy", "mirrored", "--cpu-devices", "2")

    assert (plain["strategy"], plain["replicas"]) == ("default", 1)
    assert (mirrored["strategy"], mirrored["replicas"]) == ("mirrored", 2)
    config = json.loads((tmp_path / "sentiment" / "mirrored" / "config.json").read_text())
    assert (config["strategy"], config["cpu_devices"]) == ("mirrored", 2)

    assert plain["status"] == mirrored["status"] == "completed"
    assert set(mirrored) == set(plain)
    assert set(_metrics(mirrored)) == set(_metrics(plain)) and "test_accuracy" in plain
    assert all(math.isfinite(v) for v in _metrics(mirrored).values()), _metrics(mirrored)
    assert {k: len(v) for k, v in mirrored["history"].items()} == \
        {k: len(v) for k, v in plain["history"].items()}
    assert mirrored["steps_run"] == plain["steps_run"] == 2 * plain["steps_per_epoch"]

    # StepRecorder, DivergenceWatch and TrainingDynamics did their work on the replicas.
    mirrored_dir = tmp_path / "sentiment" / "mirrored"
    rows = _step_rows(mirrored_dir)
    assert len(rows) == len(_step_rows(tmp_path / "sentiment" / "plain")) == 1 + plain["steps_run"]
    assert all(math.isfinite(float(row.split(",")[3])) for row in rows[1:])
    events = _event_bytes(mirrored_dir / "train")
    assert b"loss/batch_loss" in events and b"dynamics/update_ratio/global" in events
    assert b"dynamics/gradient_norm" in events
    assert mirrored["diagnosis"]["verdict"] in ("good", "too_low", "too_high")
    assert (mirrored_dir / "model.keras").exists()


def test_mirrored_toy_run_follows_the_same_losses_as_one_device(tmp_path):
    """Plain SGD on a linear model, no dropout: two replicas of half a batch each must
    take the same steps as one device on the whole batch (gradients averaged, not summed)."""
    script = tmp_path / "train_toy.py"
    script.write_text(TOY_SCRIPT)
    for name, strategy, devices in (("plain", "default", "1"), ("mirrored", "mirrored", "2")):
        result = _run([str(script), str(tmp_path), name, strategy, devices])
        assert result.returncode == 0, result.stderr[-3000:]
    plain = json.loads((tmp_path / "toy" / "plain" / "summary.json").read_text())
    mirrored = json.loads((tmp_path / "toy" / "mirrored" / "summary.json").read_text())
    assert mirrored["replicas"] == 2 and plain["replicas"] == 1
    assert mirrored["history"]["loss"] == pytest.approx(plain["history"]["loss"], rel=1e-4)
    assert mirrored["test_loss"] == pytest.approx(plain["test_loss"], rel=1e-4)


def test_unknown_strategy_is_one_line_exit_2_without_traceback(tmp_path, sentiment_folder):
    result = _run(["-m", "common.cli", "train", "sentiment", "--smoke", "--data",
                   str(sentiment_folder), "--output", str(tmp_path / "runs"),
                   "--strategy", "tpu_pod"])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lrsuite: error:"), lines
    assert "strategy='tpu_pod'" in lines[0] and "mirrored" in lines[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("count", ["0", "-2"])
def test_cpu_devices_below_one_is_rejected(tmp_path, capsys, sentiment_folder, count):
    code = cli.main(["train", "sentiment", "--smoke", "--data", str(sentiment_folder),
                     "--output", str(tmp_path / "runs"), "--cpu-devices", count])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cpu_devices={count}" in err[0], err
    assert not (tmp_path / "runs").exists()


def test_splitting_the_cpu_after_tensorflow_started_is_a_user_error():
    script = textwrap.dedent("""
        import tensorflow as tf
        from common.distribute import prepare_devices
        from common.errors import UserError

        tf.constant(1.0) + 1.0  # TensorFlow's runtime and devices now exist
        prepare_devices(1)  # what it already has: fine
        try:
            prepare_devices(2)
        except UserError as error:
            print(error)
            raise SystemExit(3)
    """)
    result = _run(["-c", script])
    assert result.returncode == 3, result.stderr[-2000:]
    message = result.stdout.strip()
    assert "--cpu-devices 2" in message and "1 CPU device" in message, message
