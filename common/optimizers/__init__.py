"""Rate-free and schedule-free optimizers for Keras 3, written with `keras.ops` (they run
on TensorFlow and JAX), selectable by name through `common.optim.build_optimizer`:

| name                 | method                                        | effective rate     |
|----------------------|-----------------------------------------------|--------------------|
| schedule_free_adamw  | Schedule-Free AdamW (Defazio et al. 2024)     | warmed-up lr       |
| schedule_free_sgd    | Schedule-Free SGD                             | warmed-up lr       |
| prodigy              | Prodigy (Mishchenko & Defazio 2023)           | d * lr             |
| dadapt_adam          | D-Adaptation Adam (Defazio & Mishchenko 2023) | d * lr             |
| dog                  | DoG (Ivgi et al. 2023)                        | eta_t              |

The one public hook for the rate each applies is `optimizer.effective_learning_rate()`
(StepRecorder logs it as the run's learning rate). `callbacks_for(optimizer)` returns the
callbacks a training run needs for its optimizer and schedule: the schedule-free swap
between y and x, the swap between raw and averaged weights (`averaging.py`,
`--weight-averaging`), and one-cycle's momentum cycling.
"""

from __future__ import annotations

from typing import Any

from common.optimizers.adaptive import DAdaptAdam, DoG, Prodigy
from common.optimizers.averaging import AveragedWeightsSwap, averages_weights
from common.optimizers.base import RateFreeOptimizer
from common.optimizers.momentum_cycle import MomentumCycle, momentum_attribute
from common.optimizers.schedule_free import (
    ScheduleFree,
    ScheduleFreeAdamW,
    ScheduleFreeSGD,
    ScheduleFreeSwap,
)

OPTIMIZERS: dict[str, type[RateFreeOptimizer]] = {
    "schedule_free_adamw": ScheduleFreeAdamW,
    "schedule_free_sgd": ScheduleFreeSGD,
    "prodigy": Prodigy,
    "dadapt_adam": DAdaptAdam,
    "dog": DoG,
}
SUITE_DEFAULT_EPSILON = 1e-7  # TrainConfig's default; these methods keep their papers' 1e-8
USES_BETA_1 = ("schedule_free_adamw", "schedule_free_sgd", "prodigy", "dadapt_adam")
USES_EPSILON = ("schedule_free_adamw", "prodigy", "dadapt_adam")


def build_rate_free(name: str, learning_rate: Any, *, momentum: float = 0.9,
                    weight_decay: float = 0.0, epsilon: float = SUITE_DEFAULT_EPSILON,
                    clipnorm: float | None = None) -> RateFreeOptimizer:
    """The optimizer `name` from the suite's common flags: --momentum is beta_1,
    --weight-decay its decay, --epsilon its epsilon unless left at the suite's default."""
    kwargs: dict[str, Any] = {"weight_decay": float(weight_decay)}
    if name in USES_BETA_1:
        kwargs["beta_1"] = float(momentum)
    if name in USES_EPSILON and epsilon != SUITE_DEFAULT_EPSILON:
        kwargs["epsilon"] = float(epsilon)
    if clipnorm is not None:
        kwargs["clipnorm"] = clipnorm
    return OPTIMIZERS[name](learning_rate=learning_rate, **kwargs)


def callbacks_for(optimizer, log_dir=None, log_every: int = 10) -> list:
    """Callbacks `optimizer` needs in `fit`; put them first in the list (later callbacks,
    BackupAndRestore and EarlyStopping among them, must see schedule-free's x)."""
    from common.schedules import OneCycle

    out: list = []
    if isinstance(optimizer, ScheduleFree):
        out.append(ScheduleFreeSwap(optimizer))
    if averages_weights(optimizer):
        out.append(AveragedWeightsSwap(optimizer))
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, OneCycle) and schedule.cycle_momentum \
            and momentum_attribute(optimizer):
        out.append(MomentumCycle(optimizer, schedule, log_dir=log_dir, log_every=log_every))
    return out


__all__ = [
    "OPTIMIZERS", "DAdaptAdam", "DoG", "MomentumCycle", "Prodigy", "RateFreeOptimizer",
    "AveragedWeightsSwap", "ScheduleFree", "ScheduleFreeAdamW", "ScheduleFreeSGD", "ScheduleFreeSwap",
    "build_rate_free", "callbacks_for",
]
