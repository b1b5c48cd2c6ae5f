"""Sentiment's loss and metric: binary cross-entropy on the positive-class probability, and
accuracy."""

from __future__ import annotations

import keras


def loss(cfg):
    return keras.losses.BinaryCrossentropy()


def metrics(cfg, bundle=None):
    return [keras.metrics.BinaryAccuracy(name="accuracy")]
