"""Image classification's loss and metrics: cross-entropy from logits on integer labels
(smoothed when --label-smoothing > 0), accuracy, and top-5 accuracy for many classes."""

from __future__ import annotations

import keras

from domains.image_classification.report import TOP_K, TOP_K_MIN_CLASSES


def loss(cfg):
    if cfg.label_smoothing:
        # Only the categorical loss smooths labels; metrics stay sparse.
        return SparseLabelSmoothingLoss(label_smoothing=cfg.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def metrics(cfg, bundle=None) -> list:
    """Accuracy; top-5 as well when the data (if known) has more than 10 classes."""
    found = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if bundle is not None and bundle.info["num_classes"] >= TOP_K_MIN_CLASSES:
        found.append(
            keras.metrics.SparseTopKCategoricalAccuracy(k=TOP_K, name=f"top{TOP_K}_accuracy")
        )
    return found


@keras.saving.register_keras_serializable(package="image_classification")
class SparseLabelSmoothingLoss(keras.losses.Loss):
    """Cross-entropy from logits with smoothed one-hot targets, taking integer labels."""

    def __init__(self, label_smoothing: float = 0.1, name="smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        classes = keras.ops.shape(y_pred)[-1]
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
