"""Image classification end to end through `lrsuite train`, and a short real-data run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from common.cli import main

TRAIN = ["train", "image_classification", "--smoke"]


def write_textures(path: Path, count=96, side=12, classes=4):
    """Channel 0 holds the class; the rest is noise: learnable in a few steps."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", count), ("test", count // 4)):
        labels = rng.integers(0, classes, n)
        images = rng.integers(0, 256, (n, side, side, 3)).astype(np.uint8)
        images[..., 0] = (labels * 60)[:, None, None]
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images, labels
    np.savez(path, class_names=np.array(list("abcd")), **arrays)
    return path


def only_summary(root: Path) -> dict:
    (summary_path,) = root.rglob("summary.json")
    return json.loads(summary_path.read_text()), summary_path.parent


def test_cli_train_smoke_loss_falls_and_writes_report(tmp_path):
    data = write_textures(tmp_path / "textures.npz")
    flags = "--epochs 3 --steps-per-epoch 10 --verbose 0".split()
    code = main(TRAIN + ["--output", str(tmp_path / "runs"), "--data", str(data), *flags])
    assert code == 0
    summary, run_dir = only_summary(tmp_path / "runs")
    assert summary["status"] == "completed"
    losses = summary["history"]["loss"]
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0]
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert "test_misclassified" in summary
    for split in ("val", "test"):  # flip-averaged scores beside the plain ones
        assert 0.0 <= summary[f"{split}_flip_accuracy"] <= 1.0
        assert summary[f"{split}_flip_loss"] > 0
    assert (run_dir / "plots" / "confusion_matrix.png").is_file()


def test_cli_bad_folder_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "images" / "train" / "cat").mkdir(parents=True)  # empty, beside a real class
    (tmp_path / "images" / "train" / "dog").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (6, 7), (9, 9, 9)).save(tmp_path / "images" / "train" / "dog" / "0.png")
    code = main(TRAIN + ["--output", str(tmp_path / "runs"), "--data", str(tmp_path / "images")])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert str(tmp_path / "images" / "train" / "cat") in error


@pytest.mark.slow
def test_real_cifar10_subset_beats_chance(tmp_path):
    shared = os.environ.get("LRSUITE_SHARED_DATA")
    if not shared:
        pytest.skip("LRSUITE_SHARED_DATA is unset: real-data test needs ../shared/data")
    data = Path(shared) / "image_classification" / "cifar10_subset.npz"
    flags = (
        "--epochs 2 --steps-per-epoch 25 --batch-size 64 --base-filters 8 "
        "--learning-rate 0.003 --verbose 0 --monitor-every 0"
    ).split()
    code = main(TRAIN + ["--output", str(tmp_path), "--data", str(data), *flags])
    assert code == 0
    summary, _ = only_summary(tmp_path)
    assert summary["status"] == "completed"
    assert summary["test_accuracy"] > 0.25  # chance is 0.10
