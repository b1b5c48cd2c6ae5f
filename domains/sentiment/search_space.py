"""Sentiment's tuning space: rate, optimizer, schedule and a few model sizes."""

from __future__ import annotations


def search_space(hp, cfg) -> dict:
    return {
        "learning_rate": hp.Float("learning_rate", 1e-4, 1e-1, sampling="log"),
        "optimizer": hp.Choice("optimizer", ["adam", "adamw", "rmsprop", "momentum"]),
        "schedule": hp.Choice("schedule", ["constant", "cosine", "one_cycle"]),
        "dropout": hp.Float("dropout", 0.2, 0.6, step=0.1),
    }
