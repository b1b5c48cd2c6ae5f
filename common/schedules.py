"""Learning-rate schedules the suite adds to Keras's own, as `LearningRateSchedule`s.

Keras already has exponential, inverse-time, polynomial, piecewise-constant, cosine
(with linear warmup) and cosine-with-restarts decay; `common.schedule_registry` uses those
directly. This module holds the rest: a linear warmup for any schedule, Leslie Smith's
cyclical rates, one-cycle, the Transformer's warmup then inverse square root,
warmup-stable-decay, and the exponential ramp of the LR range test.

Every schedule is evaluated on the optimizer's step counter (Keras 3 will not let a
callback set the rate of an optimizer built with a schedule), validates its arguments
once in `__init__`, returns every argument from `get_config()`, and is registered for
saving, so a model saved with any of them loads back with the same schedule.
"""

from __future__ import annotations

import math

import keras
from keras import ops

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule
PACKAGE = "lrsuite"
CYCLICAL_MODES = ("triangular", "triangular2", "exp_range", "cosine")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_rate(name: str, value: float) -> None:
    _require(
        isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
        f"{name} must be a finite number >= 0. Received: {name}={value!r}",
    )


def _check_steps(name: str, value: int, minimum: int = 1) -> None:
    _require(
        isinstance(value, int) and value >= minimum,
        f"{name} must be an integer >= {minimum}. Received: {name}={value!r}",
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class LinearWarmup(LearningRateSchedule):
    """Linear warmup from `initial_learning_rate`, then `schedule` (shifted).

    ```python
    def lr(step):
        if step < warmup_steps:
            return initial_learning_rate + (schedule(0) - initial_learning_rate) * step / warmup_steps
        return schedule(step - warmup_steps)
    ```

    Args:
        schedule: the schedule that takes over after warmup (a schedule or a float).
        warmup_steps: length of the warmup, in steps (>= 1).
        initial_learning_rate: the rate at step 0.
    """

    def __init__(self, schedule, warmup_steps: int, initial_learning_rate: float = 0.0):
        if isinstance(schedule, dict):
            schedule = keras.saving.deserialize_keras_object(schedule)
        _check_steps("warmup_steps", warmup_steps)
        _check_rate("initial_learning_rate", initial_learning_rate)
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.initial_learning_rate = initial_learning_rate

    def _after(self, step):
        if isinstance(self.schedule, LearningRateSchedule):
            return ops.cast(self.schedule(step), "float32")
        return ops.cast(self.schedule, "float32")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(self.warmup_steps)
        target = self._after(ops.zeros_like(step))
        ramp = self.initial_learning_rate + (target - self.initial_learning_rate) * (
            step / warmup
        )
        later = self._after(ops.maximum(step - warmup, 0.0))
        return ops.where(step < warmup, ramp, later)

    def get_config(self):
        schedule = self.schedule
        if isinstance(schedule, LearningRateSchedule):
            schedule = keras.saving.serialize_keras_object(schedule)
        return {
            "schedule": schedule,
            "warmup_steps": self.warmup_steps,
            "initial_learning_rate": self.initial_learning_rate,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class CyclicalLearningRate(LearningRateSchedule):
    """Cyclical learning rate (Smith, "Cyclical Learning Rates for Training Neural
    Networks", 2017), plus a cosine annealing cycle.

    ```python
    def lr(step):
        cycle = floor(1 + step / (2 * step_size))
        x = abs(step / step_size - 2 * cycle + 1)
        triangular:  base + (max - base) * max(0, 1 - x)
        triangular2: base + (max - base) * max(0, 1 - x) / 2 ** (cycle - 1)
        exp_range:   base + (max - base) * max(0, 1 - x) * gamma ** step
        cosine:      base + (max - base) * (1 + cos(pi * (step mod 2*step_size) / (2*step_size))) / 2
    ```
    The cosine mode anneals from max to base over each cycle of 2 * step_size steps,
    then restarts at max.

    Args:
        base_learning_rate: the lower bound.
        max_learning_rate: the upper bound (> base).
        step_size: half a cycle, in steps.
        mode: one of "triangular", "triangular2", "exp_range", "cosine".
        gamma: per-step decay of the amplitude in exp_range mode, in (0, 1].
    """

    def __init__(
        self,
        base_learning_rate: float,
        max_learning_rate: float,
        step_size: int,
        mode: str = "triangular",
        gamma: float = 0.99994,
    ):
        _check_rate("base_learning_rate", base_learning_rate)
        _check_rate("max_learning_rate", max_learning_rate)
        _require(
            max_learning_rate > base_learning_rate,
            "max_learning_rate must be > base_learning_rate. Received: "
            f"base_learning_rate={base_learning_rate}, "
            f"max_learning_rate={max_learning_rate}",
        )
        _check_steps("step_size", step_size)
        _require(
            mode in CYCLICAL_MODES,
            f"mode must be one of {', '.join(CYCLICAL_MODES)}. Received: mode={mode!r}",
        )
        _require(
            0 < gamma <= 1, f"gamma must be in (0, 1]. Received: gamma={gamma!r}"
        )
        self.base_learning_rate = base_learning_rate
        self.max_learning_rate = max_learning_rate
        self.step_size = step_size
        self.mode = mode
        self.gamma = gamma

    def __call__(self, step):
        step = ops.cast(step, "float32")
        half = float(self.step_size)
        amplitude = self.max_learning_rate - self.base_learning_rate
        if self.mode == "cosine":
            period = 2.0 * half
            position = (step - period * ops.floor(step / period)) / period
            return self.base_learning_rate + amplitude * 0.5 * (
                1.0 + ops.cos(math.pi * position)
            )
        cycle = ops.floor(1.0 + step / (2.0 * half))
        x = ops.abs(step / half - 2.0 * cycle + 1.0)
        triangle = ops.maximum(0.0, 1.0 - x)
        if self.mode == "triangular2":
            triangle = triangle / ops.power(2.0, cycle - 1.0)
        elif self.mode == "exp_range":
            triangle = triangle * ops.power(self.gamma, step)
        return self.base_learning_rate + amplitude * triangle

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "max_learning_rate": self.max_learning_rate,
            "step_size": self.step_size,
            "mode": self.mode,
            "gamma": self.gamma,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class OneCycle(LearningRateSchedule):
    """One-cycle policy (Smith & Topin, "Super-Convergence", 2018), as in fastai and
    PyTorch's OneCycleLR with cosine annealing.

    ```python
    start = max_lr / div_factor;  end = start / final_div_factor
    up = round(pct_start * total_steps)
    def lr(step):
        if step < up: return start + (max_lr - start) * (1 - cos(pi * step / up)) / 2
        t = (step - up) / (total_steps - up)
        return end + (max_lr - end) * (1 + cos(pi * min(t, 1))) / 2
    ```

    Momentum moves the other way (fastai): `momentum(step)` falls from max_momentum to
    base_momentum while the rate rises and climbs back while it falls (cosine both ways);
    `common.optimizers.MomentumCycle` applies it when `cycle_momentum` is on.

    Args:
        max_learning_rate: the peak rate.
        total_steps: the length of training in steps.
        pct_start: share of the steps spent rising, in (0, 1).
        div_factor: start = max / div_factor (> 1).
        final_div_factor: end = start / final_div_factor (>= 1).
        cycle_momentum: whether the optimizer's momentum (beta_1) follows `momentum()`.
        max_momentum, base_momentum: its bounds, 0 <= base <= max < 1.
    """

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        cycle_momentum: bool = True,
        max_momentum: float = 0.95,
        base_momentum: float = 0.85,
    ):
        _check_rate("max_learning_rate", max_learning_rate)
        _check_steps("total_steps", total_steps, minimum=2)
        _require(
            0 < pct_start < 1,
            f"pct_start must be in (0, 1). Received: pct_start={pct_start!r}",
        )
        _require(
            div_factor > 1,
            f"div_factor must be > 1. Received: div_factor={div_factor!r}",
        )
        _require(
            final_div_factor >= 1,
            f"final_div_factor must be >= 1. Received: final_div_factor={final_div_factor!r}",
        )
        up = round(pct_start * total_steps)
        _require(
            1 <= up < total_steps,
            "pct_start * total_steps must leave at least one step to rise and one "
            f"to fall. Received: pct_start={pct_start}, total_steps={total_steps}",
        )
        _require(
            isinstance(cycle_momentum, bool),
            f"cycle_momentum must be True or False. Received: cycle_momentum={cycle_momentum!r}",
        )
        _require(
            isinstance(max_momentum, (int, float)) and 0 <= max_momentum < 1,
            f"max_momentum must be in [0, 1). Received: max_momentum={max_momentum!r}",
        )
        _require(
            isinstance(base_momentum, (int, float)) and 0 <= base_momentum <= max_momentum,
            "base_momentum must be in [0, max_momentum]. Received: "
            f"base_momentum={base_momentum!r}, max_momentum={max_momentum!r}",
        )
        self.cycle_momentum = cycle_momentum
        self.max_momentum = max_momentum
        self.base_momentum = base_momentum
        self.max_learning_rate = max_learning_rate
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.max_learning_rate
        start = peak / self.div_factor
        end = start / self.final_div_factor
        up = float(round(self.pct_start * self.total_steps))
        down = float(self.total_steps) - up
        rising = start + (peak - start) * 0.5 * (1.0 - ops.cos(math.pi * step / up))
        t = ops.minimum(ops.maximum(step - up, 0.0) / down, 1.0)
        falling = end + (peak - end) * 0.5 * (1.0 + ops.cos(math.pi * t))
        return ops.where(step < up, rising, falling)

    def get_config(self):
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "cycle_momentum": self.cycle_momentum,
            "max_momentum": self.max_momentum,
            "base_momentum": self.base_momentum,
        }

    def momentum(self, step: int) -> float:
        """The momentum (beta_1) for `step`, inverse to the rate, as a Python float."""
        up = round(self.pct_start * self.total_steps)
        high, low = self.max_momentum, self.base_momentum
        if step < up:
            return high + (low - high) * (1 - math.cos(math.pi * step / up)) / 2
        t = min((step - up) / (self.total_steps - up), 1.0)
        return low + (high - low) * (1 - math.cos(math.pi * t)) / 2


@keras.saving.register_keras_serializable(package=PACKAGE)
class TransformerSchedule(LearningRateSchedule):
    """The warmup then inverse-square-root schedule of "Attention Is All You Need".

    ```python
    def lr(step):  # step counted from 1
        return d_model ** -0.5 * min(step ** -0.5, step * warmup_steps ** -1.5)
    ```
    Here the constant is set by the peak instead of the model width:
    `peak_learning_rate * sqrt(warmup_steps) * min(step ** -0.5, step * warmup_steps ** -1.5)`,
    which peaks at `peak_learning_rate` when step == warmup_steps; the paper's setting is
    `peak_learning_rate = (d_model * warmup_steps) ** -0.5` (7.0e-4 for d_model=512,
    warmup_steps=4000).

    Args:
        peak_learning_rate: the rate reached at the end of warmup.
        warmup_steps: length of the warmup in steps (>= 1).
    """

    def __init__(self, peak_learning_rate: float, warmup_steps: int):
        _check_rate("peak_learning_rate", peak_learning_rate)
        _check_steps("warmup_steps", warmup_steps)
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0
        warmup = float(self.warmup_steps)
        scale = self.peak_learning_rate * math.sqrt(warmup)
        return scale * ops.minimum(ops.rsqrt(step), step * warmup**-1.5)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
        }


WSD_SHAPES = ("linear", "1-sqrt")


@keras.saving.register_keras_serializable(package=PACKAGE)
class WarmupStableDecay(LearningRateSchedule):
    """Warmup-stable-decay (Hu et al. 2024, MiniCPM; Hagele et al. 2024): a linear warmup,
    a constant plateau, and a cool-down to 0 over the last `decay_steps` steps.

    ```python
    decay_start = total_steps - decay_steps
    def lr(step):
        if step < warmup_steps: return peak * step / warmup_steps
        if step < decay_start: return peak
        t = min((step - decay_start) / decay_steps, 1)
        linear: peak * (1 - t);   1-sqrt: peak * (1 - sqrt(t))
    ```
    The plateau does not depend on the length of training, so a run can be extended
    (a longer budget moves only the cool-down). Hagele et al. find 1-sqrt better.

    Args:
        peak_learning_rate: the plateau's rate.
        total_steps: length of training in steps.
        warmup_steps: warmup length (>= 0).
        decay_steps: cool-down length (>= 1); warmup + decay <= total.
        shape: "linear" or "1-sqrt".
    """

    def __init__(self, peak_learning_rate: float, total_steps: int, warmup_steps: int,
                 decay_steps: int, shape: str = "1-sqrt"):
        _check_rate("peak_learning_rate", peak_learning_rate)
        _check_steps("total_steps", total_steps)
        _check_steps("warmup_steps", warmup_steps, minimum=0)
        _check_steps("decay_steps", decay_steps)
        _require(
            warmup_steps + decay_steps <= total_steps,
            "warmup and cool-down must fit in training. Received: "
            f"warmup_steps={warmup_steps}, decay_steps={decay_steps}, total_steps={total_steps}",
        )
        _require(shape in WSD_SHAPES,
                 f"shape must be one of {', '.join(WSD_SHAPES)}. Received: shape={shape!r}")
        self.peak_learning_rate = peak_learning_rate
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.shape = shape

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        start = float(self.total_steps - self.decay_steps)
        t = ops.clip((step - start) / float(self.decay_steps), 0.0, 1.0)
        cooled = 1.0 - (t if self.shape == "linear" else ops.sqrt(t))
        rate = peak * cooled
        if self.warmup_steps:
            ramp = peak * step / float(self.warmup_steps)
            rate = ops.where(step < float(self.warmup_steps), ramp, rate)
        return rate

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "shape": self.shape,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class RangeTestRamp(LearningRateSchedule):
    """The LR range test's ramp from `start` to `end` over `num_steps` steps.

    ```python
    def lr(step):
        t = min(step / (num_steps - 1), 1)
        exponential: start * (end / start) ** t
        linear:      start + (end - start) * t
    ```

    Args:
        start_learning_rate: the first rate (> 0).
        end_learning_rate: the last rate (> start).
        num_steps: steps in the ramp (>= 2).
        mode: "exponential" or "linear".
    """

    def __init__(
        self,
        start_learning_rate: float,
        end_learning_rate: float,
        num_steps: int,
        mode: str = "exponential",
    ):
        _require(
            math.isfinite(start_learning_rate) and start_learning_rate > 0,
            "start_learning_rate must be > 0. "
            f"Received: start_learning_rate={start_learning_rate!r}",
        )
        _require(
            math.isfinite(end_learning_rate) and end_learning_rate > start_learning_rate,
            "end_learning_rate must be > start_learning_rate. Received: "
            f"start_learning_rate={start_learning_rate}, "
            f"end_learning_rate={end_learning_rate}",
        )
        _check_steps("num_steps", num_steps, minimum=2)
        _require(
            mode in ("exponential", "linear"),
            f"mode must be 'exponential' or 'linear'. Received: mode={mode!r}",
        )
        self.start_learning_rate = start_learning_rate
        self.end_learning_rate = end_learning_rate
        self.num_steps = num_steps
        self.mode = mode

    def __call__(self, step):
        t = ops.minimum(ops.cast(step, "float32") / float(self.num_steps - 1), 1.0)
        start, end = self.start_learning_rate, self.end_learning_rate
        if self.mode == "linear":
            return start + (end - start) * t
        return start * ops.exp(t * math.log(end / start))

    def get_config(self):
        return {
            "start_learning_rate": self.start_learning_rate,
            "end_learning_rate": self.end_learning_rate,
            "num_steps": self.num_steps,
            "mode": self.mode,
        }


def rate_at(schedule, step: int) -> float:
    """The rate a schedule (or a float) gives at `step`, as a Python float."""
    if isinstance(schedule, LearningRateSchedule):
        return float(ops.convert_to_numpy(schedule(step)))
    return float(schedule)
