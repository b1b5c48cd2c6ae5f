"""Translation's search space: rate, schedule and warmup, width and dropout.

The tuner's objective is val_loss (token cross-entropy on the validation split), not
val BLEU: BLEU needs a greedy decode of every validation sentence after every trial,
which on CPU costs about as much as a training epoch, and val loss ranks the same
learning-rate failures (too low: slow; too high: divergence) that BLEU would.
"""

from __future__ import annotations


def search_space(hp, cfg) -> dict:
    return {
        "learning_rate": hp.Float("learning_rate", 1e-4, 3e-3, sampling="log"),
        "schedule": hp.Choice("schedule", ["transformer", "constant", "cosine"]),
        "warmup_epochs": hp.Choice("warmup_epochs", [0.5, 1.0, 2.0]),
        "model_dim": hp.Choice("model_dim", [128, 256]),
        "dropout": hp.Choice("dropout", [0.1, 0.2]),
    }
