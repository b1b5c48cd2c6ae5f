"""Hyperparameters a search may change: the rate, optimizer, schedule and width."""

from __future__ import annotations

# Each optimizer family gets its own rate range (and hyperparameter name), because
# a good SGD rate is about 100 times a good Adam rate.
RATE_RANGES = {"nesterov": (1e-2, 1.0), "adamw": (1e-4, 1e-2)}


def search_space(hp, cfg) -> dict:
    """Keras Tuner hyperparameters -> config overrides."""
    optimizer = hp.Choice("optimizer", list(RATE_RANGES))
    low, high = RATE_RANGES[optimizer]
    schedules = sorted({"constant", cfg.schedule})
    return {
        "optimizer": optimizer,
        "learning_rate": hp.Float(f"{optimizer}_learning_rate", low, high, sampling="log"),
        "schedule": hp.Choice("schedule", schedules),
        "base_filters": hp.Choice("base_filters", [cfg.base_filters, 2 * cfg.base_filters]),
    }
