"""Generated demo data: 48x48 grey images with bright disks to segment, in the
images/ + masks/ folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

OVERRIDES = {"epochs": 3, "steps_per_epoch": 20}


def write_demo_data(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :48]
    for split, count in (("train", 24), ("val", 6), ("test", 6)):
        (folder / split / "images").mkdir(parents=True, exist_ok=True)
        (folder / split / "masks").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            mask = np.zeros((48, 48), bool)
            for _ in range(rng.integers(1, 4)):
                cy, cx, r = rng.integers(8, 40), rng.integers(8, 40), rng.integers(3, 8)
                mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            image = rng.normal(70, 25, size=(48, 48)) + 110 * mask
            Image.fromarray(np.clip(image, 0, 255).astype("uint8")).save(
                folder / split / "images" / f"{i:03d}.png")
            Image.fromarray((mask * 255).astype("uint8")).save(folder / split / "masks" / f"{i:03d}.png")
    return folder
