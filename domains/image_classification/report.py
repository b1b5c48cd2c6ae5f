"""End-of-run artefacts: a confusion matrix and a grid of misclassified test images.

Both go to TensorBoard (the run's `test` writer, Images tab) and as PNGs to
`run_dir/plots`. Top-5 accuracy is added when there are more than 10 classes.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tensorflow as tf

from common.figures import pyplot

TOP_K = 5
TOP_K_MIN_CLASSES = 11


def predict_test(model, dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images uint8, labels, logits) over one pass of the batched test set."""
    images, labels, logits = [], [], []
    for batch_images, batch_labels in dataset:
        images.append(np.clip(batch_images.numpy(), 0, 255).astype(np.uint8))
        labels.append(batch_labels.numpy())
        logits.append(np.asarray(model(batch_images, training=False)))
    return np.concatenate(images), np.concatenate(labels), np.concatenate(logits)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int):
    """counts[true, predicted]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def top_k_accuracy(labels: np.ndarray, logits: np.ndarray, k: int) -> float:
    top = np.argsort(-logits, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def plot_confusion(counts: np.ndarray, class_names: list[str]):
    plt = pyplot()
    size = max(4.0, 0.45 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=90)
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if len(class_names) <= 20:
        for row, column in np.ndindex(counts.shape):
            color = "white" if rates[row, column] > 0.5 else "black"
            axes.text(
                column, row, counts[row, column], ha="center", va="center", color=color, fontsize=7
            )
    axes.set_title("Test confusion matrix (rows: true class)")
    figure.tight_layout()
    return figure


def plot_misclassified(images, labels, predictions, class_names):
    plt = pyplot()
    columns = int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / columns))
    figure, grid = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    for axes, image, label, predicted in zip(grid.flat, images, labels, predictions, strict=False):
        axes.imshow(
            image[..., 0] if image.shape[-1] == 1 else image,
            cmap="gray" if image.shape[-1] == 1 else None,
        )
        axes.set_title(f"{class_names[label]}\n→ {class_names[predicted]}", fontsize=7)
    figure.suptitle("Misclassified test images (true → predicted)", fontsize=9)
    figure.tight_layout()
    return figure


def figure_to_png(figure) -> bytes:
    plt = pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def evaluate_extra(model, bundle, cfg, run_dir: Path) -> dict:
    """The domain's `evaluate_extra`: artefacts, plus test top-5 accuracy over 10 classes."""
    if bundle.test is None:
        return {}
    class_names = list(bundle.info["class_names"])
    images, labels, logits = predict_test(model, bundle.test)
    predictions = logits.argmax(axis=1)
    counts = confusion_matrix(labels, predictions, len(class_names))
    wrong = np.flatnonzero(predictions != labels)[: cfg.misclassified_examples]
    pngs = {"confusion_matrix": figure_to_png(plot_confusion(counts, class_names))}
    if len(wrong):
        pngs["misclassified"] = figure_to_png(
            plot_misclassified(images[wrong], labels[wrong], predictions[wrong], class_names)
        )
    plots = run_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    writer = tf.summary.create_file_writer(str(run_dir / "test"))
    with writer.as_default():
        for name, png in pngs.items():
            (plots / f"{name}.png").write_bytes(png)
            image = tf.image.decode_png(png, channels=4)[tf.newaxis]
            tf.summary.image(name, image, step=0)
    writer.close()
    extra = {"test_misclassified": int((predictions != labels).sum())}
    if len(class_names) >= TOP_K_MIN_CLASSES:
        extra[f"test_top{TOP_K}_accuracy"] = top_k_accuracy(labels, logits, TOP_K)
    return extra
