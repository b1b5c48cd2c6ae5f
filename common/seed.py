"""Seeding: the same seed gives the same run on the same machine."""

from __future__ import annotations

import keras
import tensorflow as tf


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and the backend; optionally make TF ops deterministic.

    Op determinism is slower and raises on ops without a deterministic kernel, so it is
    opt-in (`--deterministic`).
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
