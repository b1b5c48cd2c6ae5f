"""Translation's loss and metric: token cross-entropy and accuracy over real target tokens
(padding, id 0, counts for neither)."""

from __future__ import annotations

import keras
from keras import ops

from domains.translation.tokenizer import PAD_ID

PACKAGE = "translation"


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedSparseCrossentropy(keras.losses.Loss):
    """Token cross-entropy from logits, averaged over non-padding tokens.

    With label smoothing `eps` each token's loss is
    `(1 - eps) * -log p(label) + eps * mean over the vocabulary of -log p`.
    Returns one value per batch (the mean over its real tokens), so a batch of short
    sentences weighs as much as one of long sentences.
    """

    def __init__(self, label_smoothing: float = 0.0, name="masked_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        picked = ops.take_along_axis(log_probs, ops.expand_dims(y_true, -1), axis=-1)
        per_token = -ops.squeeze(picked, -1)
        if self.label_smoothing:
            uniform = -ops.mean(log_probs, axis=-1)
            per_token = (1.0 - self.label_smoothing) * per_token + (
                self.label_smoothing * uniform
            )
        real = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        return ops.sum(per_token * real) / ops.maximum(ops.sum(real), 1.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedTokenAccuracy(keras.metrics.Metric):
    """Share of non-padding target tokens whose argmax prediction is right."""

    def __init__(self, name="masked_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        real = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        hits = ops.cast(ops.equal(predicted, y_true), "float32") * real
        self.correct.assign_add(ops.sum(hits))
        self.total.assign_add(ops.sum(real))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


def loss(cfg) -> keras.losses.Loss:
    return MaskedSparseCrossentropy(label_smoothing=cfg.label_smoothing)


def metrics(cfg, bundle=None) -> list:
    return [MaskedTokenAccuracy()]
