"""Typed run configuration: one frozen dataclass per domain, built on `TrainConfig`.

Every field is a command-line flag (see `common.cli_args`); values are checked once, in
`__post_init__`, and a bad one raises `ValueError` with the field, the value received and
what is expected. Configs are plain data: they are written to and read from JSON, never
executed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

OPTIMIZER_NAMES = (
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "adadelta",
    "rmsprop",
    "adam",
    "adamw",
    "adamax",
    "nadam",
    "lion",
    "schedule_free_adamw",  # these five: common/optimizers/
    "schedule_free_sgd",
    "prodigy",
    "dadapt_adam",
    "dog",
)
STRATEGY_NAMES = ("default", "mirrored", "multi_worker")  # built in common.distribute


def help_field(default: Any = dataclasses.MISSING, help: str = "", **kwargs):
    """A dataclass field that carries its command-line help text."""
    metadata = {"help": help}
    metadata.update(kwargs.pop("metadata", {}))
    if default is dataclasses.MISSING:
        return field(metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


def _field_default(cls: type, name: str) -> Any:
    return cls.__dataclass_fields__[name].default


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    bad = value < 0 if allow_zero else value <= 0
    if isinstance(value, bool) or bad or not math.isfinite(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"{name} must be a finite number {bound}. Received: {name}={value!r}"
        )


def check_learning_rate(value: Any) -> float | str:
    """A learning rate is a finite float > 0, or the word 'auto' (range test)."""
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        try:
            value = float(value)
        except ValueError:
            raise ValueError(
                "learning_rate must be a positive number such as 3e-4, or 'auto' "
                f"to run the range test first. Received: learning_rate={value!r}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"learning_rate must be a number. Received: learning_rate={value!r}"
        )
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            "learning_rate must be a finite number > 0 (e.g. 1e-3), or 'auto'. "
            f"Received: learning_rate={value!r}"
        )
    return value


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """What every domain's run needs; domains subclass it to add their own fields."""

    domain: str = help_field("", help="Domain name; set by the domain's config class.")
    data: str | None = help_field(
        None,
        help="Local dataset (file or folder) in the domain's documented format. "
        "Unset: download from tensorflow-datasets.",
    )
    seed: int = help_field(42, help="Seed for weights, shuffling and splits.")
    deterministic: bool = help_field(
        False, help="Turn on TensorFlow op determinism (slower, bit-identical reruns)."
    )
    epochs: int = help_field(
        10, help="Passes over the training data (or of --steps-per-epoch steps each)."
    )
    batch_size: int = help_field(32, help="Examples per training step.")
    steps_per_epoch: int | None = help_field(
        None, help="Cap on training steps per epoch (default: one pass over train)."
    )
    learning_rate: float | str = help_field(
        1e-3,
        help="Peak learning rate (a schedule starts or ends from it), or 'auto' to run "
        "the LR range test first and train at its suggestion.",
    )
    optimizer: str = help_field(
        "adam", help=f"Optimizer: one of {', '.join(OPTIMIZER_NAMES)}."
    )
    momentum: float = help_field(
        0.9, help="Momentum for momentum/nesterov/rmsprop (beta_1 for Adam family)."
    )
    weight_decay: float = help_field(
        0.0, help="Decoupled weight decay (AdamW default 0.004 when left at 0)."
    )
    epsilon: float = help_field(1e-7, help="Optimizer epsilon (Adam family, RMSprop).")
    clipnorm: float | None = help_field(
        None, help="Clip each gradient to this norm (unset: no clipping)."
    )
    weight_averaging: float = help_field(
        0.0,
        help="Validate, test and save an exponential moving average of the weights "
        "with this momentum, e.g. 0.99 (warmed up as TF's ExponentialMovingAverage; 0: "
        "off). Not with schedule-free optimizers, which average already.",
    )
    schedule: str = help_field(
        "constant", help="Learning-rate schedule; `lrsuite schedules` lists them."
    )
    warmup_epochs: float = help_field(
        0.0, help="Linear warmup length in epochs, for schedules that take one."
    )
    schedule_args: dict[str, Any] = help_field(
        default_factory=dict,
        help="Extra schedule parameters as KEY=VALUE (repeatable), e.g. "
        "--schedule-arg decay_rate=0.5.",
    )
    jit_compile: str = help_field(
        "auto",
        help="XLA compilation of the training step: auto (Keras decides), on (compile "
        "with XLA: faster steps on GPU, a slow first step), off.",
    )
    early_stopping: int = help_field(
        0,
        help="Early-stopping patience in epochs: stop when {objective} has not improved "
        "for this many epochs (the training loss when there is no validation split), "
        "and keep the best epoch's weights (0: off).",
    )
    divergence_factor: float = help_field(
        4.0,
        help="Stop as diverged when the loss exceeds this multiple of its best "
        "(NaN/Inf always stops).",
    )
    log_lr_every: int = help_field(
        10, help="Write the learning rate to TensorBoard every N steps (0: off)."
    )
    monitor_every: int = help_field(
        50,
        help="Every N steps, log gradient norm and update/weight ratios (0: off).",
    )
    sharpness_every: int = help_field(
        0,
        help="Every N steps, measure the loss's sharpness (top Hessian eigenvalue, "
        "preconditioned for Adam) against the rate's stability threshold (0: off).",
    )
    output: str = help_field("runs", help="Root folder for run directories.")
    run_name: str | None = help_field(
        None, help="Run directory name (default: <time>-<optimizer>-<schedule>-lr<rate>)."
    )
    resume: bool = help_field(
        False,
        help="Continue the run named by --run-name from its last completed epoch.",
    )
    verbose: int = help_field(
        -1, help="Keras verbosity 0/1/2 (-1: 1 on a terminal, else 2)."
    )
    strategy: str = help_field(
        "default",
        help="tf.distribute strategy: default (one device), mirrored (all GPUs, else all "
        "logical CPUs), multi_worker (cluster from the TF_CONFIG environment variable).",
    )
    cpu_devices: int = help_field(
        1, help="Split the CPU into N logical devices, to try mirrored training without GPUs."
    )

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "learning_rate", check_learning_rate(self.learning_rate)
        )
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"{name} must be an integer >= 1. Received: {name}={value!r}"
                )
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(
                "steps_per_epoch must be >= 1 or unset. "
                f"Received: steps_per_epoch={self.steps_per_epoch!r}"
            )
        if self.optimizer not in OPTIMIZER_NAMES:
            raise ValueError(
                f"Unknown optimizer. Expected one of: {', '.join(OPTIMIZER_NAMES)}. "
                f"Received: optimizer={self.optimizer!r}"
            )
        self._check_schedule()
        if not 0 <= self.momentum < 1:
            raise ValueError(
                f"momentum must be in [0, 1). Received: momentum={self.momentum!r}"
            )
        _check_positive("weight_decay", self.weight_decay, allow_zero=True)
        _check_positive("epsilon", self.epsilon)
        _check_positive("warmup_epochs", self.warmup_epochs, allow_zero=True)
        _check_positive("divergence_factor", self.divergence_factor)
        if self.divergence_factor <= 1:
            raise ValueError(
                "divergence_factor must be > 1. "
                f"Received: divergence_factor={self.divergence_factor!r}"
            )
        if self.clipnorm is not None:
            _check_positive("clipnorm", self.clipnorm)
        if not 0 <= self.weight_averaging < 1:
            raise ValueError(
                "weight_averaging must be in [0, 1) (an EMA momentum; 0: off). "
                f"Received: weight_averaging={self.weight_averaging!r}"
            )
        if self.weight_averaging and self.optimizer.startswith("schedule_free"):
            if self.weight_averaging == _field_default(type(self), "weight_averaging"):
                # A domain's default average yields to the optimizer's own average.
                object.__setattr__(self, "weight_averaging", 0.0)
            else:
                raise ValueError(
                    f"weight_averaging and optimizer={self.optimizer!r}: a schedule-free "
                    "optimizer already evaluates an average of its iterates; drop one of them."
                )
        for name in ("early_stopping", "log_lr_every", "monitor_every", "sharpness_every"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"{name} must be >= 0. Received: {name}={value!r}")
        if self.jit_compile not in ("auto", "on", "off"):
            raise ValueError(
                "jit_compile must be one of auto, on, off. "
                f"Received: jit_compile={self.jit_compile!r}"
            )
        if self.strategy not in STRATEGY_NAMES:
            raise ValueError(
                f"Unknown strategy. Expected one of: {', '.join(STRATEGY_NAMES)}. "
                f"Received: strategy={self.strategy!r}"
            )
        if isinstance(self.cpu_devices, bool) or not isinstance(self.cpu_devices, int) \
                or self.cpu_devices < 1:
            raise ValueError(
                f"cpu_devices must be an integer >= 1. Received: cpu_devices={self.cpu_devices!r}"
            )
        if self.verbose not in (-1, 0, 1, 2):
            raise ValueError(
                f"verbose must be -1, 0, 1 or 2. Received: verbose={self.verbose!r}"
            )
        if self.run_name is not None and (
            not self.run_name
            or os.sep in self.run_name
            or self.run_name in (".", "..")
        ):
            raise ValueError(
                "run_name must be a plain folder name without '/'. "
                f"Received: run_name={self.run_name!r}"
            )
        if self.resume and not self.run_name:
            raise ValueError(
                "resume needs the name of the run to continue: add --run-name NAME."
            )

    def _check_schedule(self) -> None:
        """Name and parameter names now; values that depend on steps at build time."""
        from common.schedule_registry import get_spec, resolve_args

        resolve_args(get_spec(self.schedule), dict(self.schedule_args))

    @classmethod
    def smoke(cls, **overrides: Any) -> TrainConfig:
        """A tiny preset for tests: few steps, small batches."""
        values: dict[str, Any] = {"epochs": 2, "batch_size": 8, "steps_per_epoch": 4}
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from `to_dict()` output; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(
                f"Unknown config field(s) for {cls.__name__}: {', '.join(unknown)}. "
                f"Expected some of: {', '.join(sorted(names))}"
            )
        return cls(**values)
