"""Generated demo data: 16x16 images of three patterns (horizontal bars, vertical bars,
a bright centre square) with noise, as an .npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

OVERRIDES = {"epochs": 3, "steps_per_epoch": 20, "batch_size": 16}
CLASSES = ("horizontal", "vertical", "square")


def _image(label: int, rng) -> np.ndarray:
    image = rng.integers(0, 80, size=(16, 16, 3))
    if label == 0:
        image[::4] += 150
    elif label == 1:
        image[:, ::4] += 150
    else:
        image[5:11, 5:11] += 150
    return np.clip(image, 0, 255).astype("uint8")


def write_demo_data(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, count in (("train", 600), ("test", 150)):
        labels = np.arange(count) % len(CLASSES)
        arrays[f"x_{split}"] = np.stack([_image(int(y), rng) for y in labels])
        arrays[f"y_{split}"] = labels.astype("int64")
    path = folder / "patterns.npz"
    np.savez(path, class_names=np.array(CLASSES), **arrays)
    return path
