"""After training: per-image test Dice, and overlays of true and predicted masks.

Each overlay row shows the test image, the true mask in green, and the prediction
coloured by outcome (green: hit, red: false alarm, blue: missed). Pixels outside the
field of view are dimmed. Rows go to TensorBoard (`run_dir/test`, tab Images) and to
`run_dir/plots/test_overlays.png`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

GREEN, RED, BLUE = (np.array(c, np.float32) for c in ((0, 1, 0), (1, 0, 0), (0, 0.4, 1)))


def _paint(image: np.ndarray, where: np.ndarray, color: np.ndarray, alpha: float = 0.6):
    out = image.copy()
    out[where] = (1 - alpha) * out[where] + alpha * color
    return out


def overlay_row(image: np.ndarray, mask: np.ndarray, fov: np.ndarray, predicted: np.ndarray):
    """(H, 3W, 3) uint8: image | truth | prediction coloured by outcome (boolean masks)."""
    shown = image * np.where(fov[..., None] > 0, 1.0, 0.4)  # dim outside the FOV
    truth = _paint(shown, mask > 0, GREEN)
    inside = fov > 0  # outcomes only where they count
    outcome = _paint(shown, predicted & mask & inside, GREEN)
    outcome = _paint(outcome, predicted & ~mask & inside, RED)
    outcome = _paint(outcome, ~predicted & mask & inside, BLUE)
    row = np.concatenate([shown, truth, outcome], axis=1)
    return (np.clip(row, 0, 1) * 255).astype(np.uint8)


def image_dice(mask: np.ndarray, fov: np.ndarray, predicted: np.ndarray) -> float:
    """Dice of one image inside its FOV; 1.0 when both masks are empty."""
    inside = fov > 0
    hits = np.sum(predicted[inside] & mask[inside])
    total = np.sum(predicted[inside]) + np.sum(mask[inside])
    return 1.0 if total == 0 else float(2 * hits / total)


def _stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate(padded, axis=0)


def evaluate_extra(model, bundle, cfg, run_dir: Path) -> dict:
    """Per-image mean test Dice (inside the FOV) plus overlay images; see module doc."""
    if bundle.test is None:
        return {}
    names = bundle.info.get("test_names", [])
    dices, rows = [], []
    for images, targets in bundle.test:
        probabilities = model.predict_on_batch(images.numpy())  # any backend takes NumPy
        for image, target, probability in zip(
            images.numpy(), targets.numpy(), np.asarray(probabilities), strict=True
        ):
            mask = target[..., 0] > 0.5
            fov = target[..., 1] > 0.5
            predicted = probability[..., 0] > 0.5
            dices.append(image_dice(mask, fov, predicted))
            if len(rows) < cfg.overlay_count:
                rows.append(overlay_row(image, mask, fov, predicted))
    if rows:
        plots = run_dir / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_stack_rows(rows)).save(plots / "test_overlays.png")
        writer = tf.summary.create_file_writer(str(run_dir / "test"))
        with writer.as_default():
            for index, row in enumerate(rows):
                label = names[index] if index < len(names) else str(index)
                tf.summary.image(
                    f"test_overlay/{index:02d}_{label}",
                    row[None],
                    step=0,
                    description="image | true mask (green) | prediction: hit green, "
                    "false alarm red, missed blue",
                )
        writer.close()
    return {"test_dice_per_image": float(np.mean(dices)) if dices else float("nan")}
