"""Small generated image/mask data for the medical segmentation tests (written to tmp_path)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def vessel_like(rng: np.random.Generator, height: int, width: int):
    """(image uint8 RGB, mask 0/255, fov 0/255): bright bars on noise inside a disk."""
    mask = np.zeros((height, width), np.uint8)
    for _ in range(3):
        if rng.random() < 0.5:
            row = rng.integers(0, height - 3)
            mask[row : row + 3, :] = 255
        else:
            col = rng.integers(0, width - 3)
            mask[:, col : col + 3] = 255
    rows, cols = np.mgrid[:height, :width]
    radius = 0.48 * min(height, width)
    fov = (((rows - height / 2) ** 2 + (cols - width / 2) ** 2) <= radius**2) * 255
    noise = rng.integers(0, 90, (height, width, 3))
    image = np.clip(noise + (mask[..., None] > 0) * 150, 0, 255) * (fov[..., None] > 0)
    return image.astype(np.uint8), mask, fov.astype(np.uint8)


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def make_folder(
    root: Path,
    counts: dict[str, int] | None = None,
    *,
    size: tuple[int, int] = (40, 36),
    with_fov: bool = True,
    seed: int = 0,
) -> Path:
    """root/<split>/{images,masks[,fov]}/NN.png, the documented --data layout."""
    rng = np.random.default_rng(seed)
    counts = counts or {"train": 6, "test": 2}
    index = 0
    for split, count in counts.items():
        for _ in range(count):
            image, mask, fov = vessel_like(rng, *size)
            name = f"{index:02d}.png"
            write_png(root / split / "images" / name, image)
            write_png(root / split / "masks" / name, mask)
            if with_fov:
                write_png(root / split / "fov" / name, fov)
            index += 1
    return root


KVASIR_SIZES = [(48, 40), (40, 56), (64, 48), (36, 36), (52, 44)]


def make_kvasir_folder(parent: Path, count: int = 10, seed: int = 0) -> Path:
    """parent/Kvasir-SEG/{images,masks}/<id>.jpg plus kavsir_bboxes.json, like the zip."""
    rng = np.random.default_rng(seed)
    root = parent / "Kvasir-SEG"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    boxes = {}
    for i in range(count):
        height, width = KVASIR_SIZES[i % len(KVASIR_SIZES)]
        name = f"cju{i:04d}fixture{rng.integers(1e6):06d}"
        mask = np.zeros((height, width), np.uint8)
        top, left = rng.integers(2, height // 2), rng.integers(2, width // 2)
        mask[top : top + height // 3, left : left + width // 3] = 255
        image = rng.integers(0, 120, (height, width, 3)).astype(np.uint8)
        image[mask > 0] = (220, 90, 80)
        Image.fromarray(image).save(root / "images" / f"{name}.jpg", quality=90)
        # JPEG masks, as in the real archive: edges get in-between grey levels.
        Image.fromarray(mask).save(root / "masks" / f"{name}.jpg", quality=75)
        boxes[name] = {"height": height, "width": width, "bbox": []}
    (root / "kavsir_bboxes.json").write_text(json.dumps(boxes))
    return root


def make_kvasir_zip(directory: Path, count: int = 10) -> Path:
    """directory/kvasir-seg.zip holding Kvasir-SEG/... like the download."""
    staging = directory / "staging"
    root = make_kvasir_folder(staging, count)
    archive = directory / "kvasir-seg.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(root.rglob("*")):
            zipped.write(path, path.relative_to(staging))
    return archive


def test_fixture_zip_is_laid_out_like_the_real_archive(tmp_path):
    archive = make_kvasir_zip(tmp_path, count=3)
    with zipfile.ZipFile(archive) as zipped:
        names = sorted(zipped.namelist())
    assert "Kvasir-SEG/kavsir_bboxes.json" in names
    assert len([n for n in names if n.startswith("Kvasir-SEG/images/") and n.endswith(".jpg")]) == 3
    assert len([n for n in names if n.startswith("Kvasir-SEG/masks/") and n.endswith(".jpg")]) == 3
