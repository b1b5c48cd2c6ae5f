"""Optimizers by name, each taking a float rate or any `LearningRateSchedule`."""

from __future__ import annotations

from typing import Any

import keras

from common.config import OPTIMIZER_NAMES
from common.optimizers import OPTIMIZERS as RATE_FREE
from common.optimizers import build_rate_free

ADAMW_DEFAULT_WEIGHT_DECAY = 0.004  # Keras's own AdamW default


def build_optimizer(
    name: str,
    learning_rate: Any,
    *,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    epsilon: float = 1e-7,
    clipnorm: float | None = None,
) -> keras.optimizers.Optimizer:
    """Return the Keras optimizer `name` with the given rate and main parameters.

    `momentum` is SGD's momentum, RMSprop's momentum, and beta_1 for the Adam family.
    `weight_decay` is decoupled decay (AdamW's default applies when it is 0).

    Raises:
        ValueError: unknown optimizer name.
    """
    common: dict[str, Any] = {"learning_rate": learning_rate}
    if clipnorm is not None:
        common["clipnorm"] = clipnorm
    if weight_decay and name != "adamw":
        common["weight_decay"] = weight_decay
    opt = keras.optimizers
    if name == "sgd":
        return opt.SGD(**common)
    if name == "momentum":
        return opt.SGD(momentum=momentum, **common)
    if name == "nesterov":
        return opt.SGD(momentum=momentum, nesterov=True, **common)
    if name == "adagrad":
        return opt.Adagrad(epsilon=epsilon, **common)
    if name == "adadelta":
        return opt.Adadelta(epsilon=epsilon, **common)
    if name == "rmsprop":
        return opt.RMSprop(epsilon=epsilon, **common)
    if name == "adam":
        return opt.Adam(beta_1=momentum, epsilon=epsilon, **common)
    if name == "adamw":
        decay = weight_decay or ADAMW_DEFAULT_WEIGHT_DECAY
        return opt.AdamW(beta_1=momentum, epsilon=epsilon, weight_decay=decay, **common)
    if name == "adamax":
        return opt.Adamax(beta_1=momentum, epsilon=epsilon, **common)
    if name == "nadam":
        return opt.Nadam(beta_1=momentum, epsilon=epsilon, **common)
    if name == "lion":
        return opt.Lion(beta_1=momentum, **common)
    if name in RATE_FREE:  # schedule-free and rate-free methods (common/optimizers/)
        return build_rate_free(name, learning_rate, momentum=momentum,
                               weight_decay=weight_decay, epsilon=epsilon, clipnorm=clipnorm)
    raise ValueError(
        f"Unknown optimizer. Expected one of: {', '.join(OPTIMIZER_NAMES)}. "
        f"Received: optimizer={name!r}"
    )
