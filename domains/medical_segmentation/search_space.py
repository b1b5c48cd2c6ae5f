"""Hyperparameters the tuner explores for the U-Net: rate, optimizer, schedule, width."""

from __future__ import annotations


def search_space(hp, cfg) -> dict:
    """Keras Tuner hyperparameters -> overrides of a SegmentationConfig."""
    return {
        "learning_rate": hp.Float("learning_rate", 1e-4, 1e-2, sampling="log"),
        "optimizer": hp.Choice("optimizer", ["adam", "adamw"]),
        "schedule": hp.Choice("schedule", ["constant", "cosine", "one_cycle"]),
        "base_filters": hp.Choice("base_filters", [8, 16, 32]),
    }
