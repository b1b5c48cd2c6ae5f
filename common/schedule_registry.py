"""Schedules by name, with parameters in epochs, turned into step-based Keras schedules.

The command line speaks epochs (`--schedule cosine --warmup-epochs 1`) so the same
spelling works for every domain; `build_schedule` converts them to steps once the
trainer knows `steps_per_epoch`. `--lr` is always the schedule's peak (or starting)
rate. Keras's built-in schedules are used wherever one exists.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from common import schedules as S

K = keras.optimizers.schedules


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    help: str
    # (low, high, sampling) that `lrsuite tune` samples it from when its schedule is chosen
    search: tuple[float, float, str] | None = None


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    summary: str
    params: tuple[Param, ...]
    # (lr, steps_per_epoch, total_steps, warmup_steps, args) -> schedule or float
    build: Callable[..., Any]
    # "wrap": --warmup-epochs adds LinearWarmup; "native": the schedule does it itself
    warmup: str = "wrap"


@dataclass(frozen=True)
class Plan:
    """What the trainer needs: the optimizer's rate and any plateau callback args."""

    learning_rate: Any
    plateau: dict[str, float] | None = None


def _epochs_to_steps(name: str, epochs: float, steps_per_epoch: int) -> int:
    steps = round(float(epochs) * steps_per_epoch)
    if steps < 1:
        raise ValueError(
            f"{name} must be at least one step long. Received: {name}={epochs} "
            f"epochs with {steps_per_epoch} steps per epoch"
        )
    return steps


def _fraction(name: str, value: float, *, upper_inclusive: bool = False) -> float:
    ok = 0 < value <= 1 if upper_inclusive else 0 < value < 1
    if not ok:
        bound = "(0, 1]" if upper_inclusive else "(0, 1)"
        raise ValueError(f"{name} must be in {bound}. Received: {name}={value!r}")
    return float(value)


def _constant(lr, spe, total, warmup, a):
    return lr


def _step(lr, spe, total, warmup, a):
    factor = _fraction("factor", a["factor"])
    every = _epochs_to_steps("every_epochs", a["every_epochs"], spe)
    return K.ExponentialDecay(lr, every, factor, staircase=True)


def _drops(lr, spe, total, warmup, a):
    factor = _fraction("factor", a["factor"])
    epochs = a["at_epochs"]
    epochs = [epochs] if isinstance(epochs, (int, float)) else list(epochs)
    boundaries = [_epochs_to_steps("at_epochs", e, spe) for e in epochs]
    if boundaries != sorted(set(boundaries)):
        raise ValueError(
            "at_epochs must be strictly increasing. Received: "
            f"at_epochs={','.join(str(e) for e in epochs)}"
        )
    values = [lr * factor**i for i in range(len(boundaries) + 1)]
    return K.PiecewiseConstantDecay(boundaries, values)


def _numbers(value) -> list[float]:
    return [value] if isinstance(value, (int, float)) else list(value)


def _piecewise(lr, spe, total, warmup, a):
    """--lr times multipliers[i] from the first step of the epoch at_epochs[i - 1] on."""
    epochs, multipliers = _numbers(a["at_epochs"]), _numbers(a["multipliers"])
    if any(not math.isfinite(e) or e <= 0 for e in epochs):
        raise ValueError("at_epochs must be positive epochs. Received: "
                         f"at_epochs={','.join(str(e) for e in epochs)}")
    starts = [_epochs_to_steps("at_epochs", e, spe) for e in epochs]
    if starts != sorted(set(starts)):
        raise ValueError("at_epochs must be strictly increasing. Received: "
                         f"at_epochs={','.join(str(e) for e in epochs)}")
    if len(multipliers) != len(starts) + 1:
        raise ValueError(f"multipliers needs one value per piece ({len(starts) + 1} for "
                         f"{len(starts)} at_epochs). Received: multipliers="
                         f"{','.join(str(m) for m in multipliers)}")
    if any(not math.isfinite(m) or m <= 0 for m in multipliers):
        raise ValueError("multipliers must be finite and > 0. Received: multipliers="
                         f"{','.join(str(m) for m in multipliers)}")
    # Keras keeps values[i] while step <= boundaries[i]: a piece starting at step s ends
    # the previous one at s - 1, so each epoch's first step already has its own rate.
    return K.PiecewiseConstantDecay([s - 1 for s in starts],
                                    [float(lr * m) for m in multipliers])


def _exponential(lr, spe, total, warmup, a):
    rate = _fraction("decay_rate", a["decay_rate"])
    return K.ExponentialDecay(lr, spe, rate)


def _inverse_time(lr, spe, total, warmup, a):
    if a["decay_rate"] <= 0:
        raise ValueError(f"decay_rate must be > 0. Received: decay_rate={a['decay_rate']}")
    return K.InverseTimeDecay(lr, spe, float(a["decay_rate"]))


def _polynomial(lr, spe, total, warmup, a):
    end = a["end_fraction"]
    if not 0 <= end < 1:
        raise ValueError(f"end_fraction must be in [0, 1). Received: end_fraction={end}")
    if a["power"] <= 0:
        raise ValueError(f"power must be > 0. Received: power={a['power']}")
    return K.PolynomialDecay(lr, total - warmup, lr * end, power=float(a["power"]))


def _cosine(lr, spe, total, warmup, a):
    alpha = a["alpha"]
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must be in [0, 1). Received: alpha={alpha}")
    if warmup == 0:
        return K.CosineDecay(lr, total, alpha=alpha)
    start = lr * a["warmup_start_fraction"]
    return K.CosineDecay(
        start, total - warmup, alpha=alpha, warmup_target=lr, warmup_steps=warmup
    )


def _cosine_restarts(lr, spe, total, warmup, a):
    first = _epochs_to_steps("first_cycle_epochs", a["first_cycle_epochs"], spe)
    if a["t_mul"] < 1:
        raise ValueError(f"t_mul must be >= 1. Received: t_mul={a['t_mul']}")
    m_mul = _fraction("m_mul", a["m_mul"], upper_inclusive=True)
    alpha = a["alpha"]
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must be in [0, 1). Received: alpha={alpha}")
    return K.CosineDecayRestarts(
        lr, first, t_mul=float(a["t_mul"]), m_mul=m_mul, alpha=alpha
    )


def _cyclical(mode: str):
    def build(lr, spe, total, warmup, a):
        base = lr * _fraction("base_fraction", a["base_fraction"])
        half = _epochs_to_steps("half_cycle_epochs", a["half_cycle_epochs"], spe)
        return S.CyclicalLearningRate(base, lr, half, mode=mode, gamma=a.get("gamma", 1.0))

    return build


def _switch(name: str, value) -> bool:
    if value not in (0, 1):
        raise ValueError(f"{name} must be 1 (on) or 0 (off). Received: {name}={value!r}")
    return bool(value)


def _one_cycle(lr, spe, total, warmup, a):
    return S.OneCycle(
        lr,
        total,
        pct_start=a["pct_start"],
        div_factor=a["div_factor"],
        final_div_factor=a["final_div_factor"],
        cycle_momentum=_switch("cycle_momentum", a["cycle_momentum"]),
        max_momentum=a["max_momentum"],
        base_momentum=a["base_momentum"],
    )


def _wsd(lr, spe, total, warmup, a):
    decay = round(_fraction("decay_fraction", a["decay_fraction"], upper_inclusive=True) * total)
    if decay < 1 or warmup + decay > total:
        raise ValueError(
            f"the cool-down must be >= 1 step and fit after the warmup. Received: "
            f"decay_fraction={a['decay_fraction']} ({decay} of {total} steps) with "
            f"{warmup} warmup steps")
    if a["shape"] not in S.WSD_SHAPES:
        raise ValueError(f"shape must be one of {', '.join(S.WSD_SHAPES)}. "
                         f"Received: shape={a['shape']!r}")
    return S.WarmupStableDecay(lr, total, warmup, decay, shape=a["shape"])


def _transformer(lr, spe, total, warmup, a):
    if warmup == 0:
        warmup = max(1, round(a["default_warmup_fraction"] * total))
    return S.TransformerSchedule(lr, warmup)


def _plateau(lr, spe, total, warmup, a):
    return lr  # a float rate that ReduceLROnPlateau may lower


def _range_test(lr, spe, total, warmup, a):
    if total < 2:
        raise ValueError(f"the range test needs at least 2 steps. Received: {total} steps")
    return S.RangeTestRamp(float(a["start_lr"]), lr, total)


CYCLE_PARAMS = (
    Param("base_fraction", 0.25, "lower bound as a fraction of --lr (the upper bound)",
          search=(0.05, 0.5, "log")),
    Param("half_cycle_epochs", 2.0, "half a cycle, in epochs (Smith: 2-10x an epoch)"),
)

SPECS: dict[str, ScheduleSpec] = {
    s.name: s
    for s in (
        ScheduleSpec("constant", "the same rate throughout", (), _constant),
        ScheduleSpec(
            "step",
            "step decay: multiply by `factor` every `every_epochs` epochs",
            (Param("factor", 0.5, "multiplier at each drop, in (0, 1)",
                   search=(0.1, 0.7, "linear")),
             Param("every_epochs", 3.0, "epochs between drops")),
            _step,
        ),
        ScheduleSpec(
            "drops",
            "scheduled drops: multiply by `factor` at the given epochs",
            (Param("factor", 0.1, "multiplier at each drop, in (0, 1)", search=(0.05, 0.5, "log")),
             Param("at_epochs", (5.0, 8.0), "epochs of the drops, comma-separated")),
            _drops,
        ),
        ScheduleSpec(
            "piecewise",
            "piecewise constant: --lr times multipliers[i] from at_epochs[i - 1] on",
            (Param("at_epochs", (5.0,), "epochs where a piece starts, comma-separated"),
             Param("multipliers", (1.0, 0.1), "each piece's rate as a multiple of --lr "
                   "(one more than at_epochs)")),
            _piecewise,
        ),
        ScheduleSpec(
            "exponential",
            "exponential decay: lr * decay_rate ** epoch (smooth)",
            (Param("decay_rate", 0.8, "multiplier per epoch, in (0, 1)",
                   search=(0.5, 0.95, "linear")),),
            _exponential,
        ),
        ScheduleSpec(
            "inverse_time",
            "inverse-time decay: lr / (1 + decay_rate * epoch)",
            (Param("decay_rate", 0.5, "per-epoch decay, > 0", search=(0.05, 2.0, "log")),),
            _inverse_time,
        ),
        ScheduleSpec(
            "polynomial",
            "polynomial decay to end_fraction * lr (power 1: linear)",
            (Param("end_fraction", 0.0, "final rate as a fraction of --lr"),
             Param("power", 1.0, "exponent of the decay", search=(0.5, 2.0, "linear"))),
            _polynomial,
        ),
        ScheduleSpec(
            "cosine",
            "cosine annealing to alpha * lr, after an optional linear warmup",
            (Param("alpha", 0.0, "final rate as a fraction of --lr", search=(0.0, 0.2, "linear")),
             Param("warmup_start_fraction", 0.0, "warmup starts at this fraction of --lr")),
            _cosine,
            warmup="native",
        ),
        ScheduleSpec(
            "cosine_restarts",
            "cosine annealing with warm restarts (SGDR)",
            (Param("first_cycle_epochs", 2.0, "length of the first cycle"),
             Param("t_mul", 2.0, "each cycle is t_mul times longer", search=(1.0, 2.0, "linear")),
             Param("m_mul", 1.0, "each restart peaks at m_mul times the last peak",
                   search=(0.5, 1.0, "linear")),
             Param("alpha", 0.0, "floor as a fraction of the cycle's peak")),
            _cosine_restarts,
        ),
        ScheduleSpec(
            "triangular", "cyclical (Smith): linear up and down between bounds",
            CYCLE_PARAMS, _cyclical("triangular"),
        ),
        ScheduleSpec(
            "triangular2", "cyclical: triangular, amplitude halved every cycle",
            CYCLE_PARAMS, _cyclical("triangular2"),
        ),
        ScheduleSpec(
            "exp_range", "cyclical: triangular, amplitude times gamma ** step",
            CYCLE_PARAMS + (Param("gamma", 0.99994, "per-step amplitude decay"),),
            _cyclical("exp_range"),
        ),
        ScheduleSpec(
            "cyclical_cosine",
            "cyclical annealing: cosine from --lr down to the lower bound, each cycle",
            CYCLE_PARAMS, _cyclical("cosine"),
        ),
        ScheduleSpec(
            "one_cycle",
            "one-cycle: rise to --lr, then anneal far below the start",
            (Param("pct_start", 0.3, "share of training spent rising", search=(0.1, 0.5, "linear")),
             Param("div_factor", 25.0, "start = lr / div_factor", search=(5.0, 100.0, "log")),
             Param("final_div_factor", 1e4, "end = start / final_div_factor"),
             Param("cycle_momentum", 1, "1: momentum (beta_1) cycles inversely, 0: off"),
             Param("max_momentum", 0.95, "momentum at the start and the end"),
             Param("base_momentum", 0.85, "momentum at the rate's peak")),
            _one_cycle,
            warmup="native",
        ),
        ScheduleSpec(
            "wsd",
            "warmup-stable-decay: warmup, constant --lr, cool-down over the last part",
            (Param("decay_fraction", 0.2, "share of training spent cooling down, in (0, 1]"),
             Param("shape", "1-sqrt", "cool-down shape: linear or 1-sqrt")),
            _wsd,
            warmup="native",
        ),
        ScheduleSpec(
            "transformer",
            "Transformer: linear warmup to --lr, then inverse square root",
            (Param("default_warmup_fraction", 0.1,
                   "warmup share when --warmup-epochs is 0"),),
            _transformer,
            warmup="native",
        ),
        ScheduleSpec(
            "plateau",
            "ReduceLROnPlateau: multiply by factor when val loss stalls",
            (Param("factor", 0.5, "multiplier at each reduction, in (0, 1)",
                   search=(0.2, 0.7, "linear")),
             Param("patience", 2, "epochs without improvement before reducing"),
             Param("min_fraction", 1e-3, "floor as a fraction of --lr")),
            _plateau,
        ),
        ScheduleSpec(
            "range_test",
            "the range test's ramp: exponential from start_lr up to --lr over the run",
            (Param("start_lr", 1e-7, "the first rate (> 0, below --lr)"),),
            _range_test,
            warmup="native",
        ),
    )
}


def schedule_names() -> list[str]:
    return list(SPECS)


def get_spec(name: str) -> ScheduleSpec:
    if name not in SPECS:
        raise ValueError(
            f"Unknown schedule. Expected one of: {', '.join(SPECS)}. "
            f"Received: schedule={name!r}"
        )
    return SPECS[name]


def resolve_args(spec: ScheduleSpec, args: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with `args`; unknown parameter names are an error."""
    known = {p.name: p.default for p in spec.params}
    unknown = sorted(set(args) - set(known))
    if unknown:
        expected = ", ".join(known) or "none"
        raise ValueError(
            f"Schedule {spec.name!r} has no parameter {', '.join(unknown)}. "
            f"Expected some of: {expected}"
        )
    return {**known, **args}


def build_schedule(
    name: str,
    learning_rate: float,
    *,
    steps_per_epoch: int,
    epochs: int,
    warmup_epochs: float = 0.0,
    args: dict[str, Any] | None = None,
) -> Plan:
    """Build the schedule `name` for a run of `epochs` x `steps_per_epoch` steps.

    Raises:
        ValueError: unknown schedule or parameter, or a value out of range (warmup
            as long as training, a factor >= 1, bounds inverted, ...).
    """
    spec = get_spec(name)
    values = resolve_args(spec, dict(args or {}))
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1. Received: {steps_per_epoch}")
    total = steps_per_epoch * epochs
    warmup = round(warmup_epochs * steps_per_epoch)
    if warmup >= total:
        raise ValueError(
            f"warmup must be shorter than training. Received: warmup_epochs={warmup_epochs} "
            f"({warmup} steps) with {epochs} epochs ({total} steps). Lower "
            "--warmup-epochs or raise --epochs."
        )
    if warmup and name == "plateau":
        raise ValueError(
            "plateau does not take --warmup-epochs (its rate must stay settable). "
            f"Received: warmup_epochs={warmup_epochs}"
        )
    if warmup and name == "constant":
        rate = S.LinearWarmup(learning_rate, warmup, 0.0)
    else:
        rate = spec.build(learning_rate, steps_per_epoch, total, warmup, values)
        if warmup and spec.warmup == "wrap":
            rate = S.LinearWarmup(rate, warmup, 0.0)
    plateau = None
    if name == "plateau":
        factor = _fraction("factor", values["factor"])
        patience = int(values["patience"])
        if patience < 0:
            raise ValueError(f"patience must be >= 0. Received: patience={patience}")
        plateau = {
            "factor": factor,
            "patience": patience,
            "min_lr": learning_rate * values["min_fraction"],
        }
    return Plan(learning_rate=rate, plateau=plateau)


def parse_value(text: str) -> Any:
    """A schedule parameter from the command line: a number, or numbers joined by ','."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"empty value. Received: {text!r}")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ValueError(
            f"schedule parameters must be numbers (or numbers joined by ','). "
            f"Received: {text!r}"
        ) from None
    if any(not math.isfinite(n) for n in numbers):
        raise ValueError(f"schedule parameters must be finite. Received: {text!r}")
    return tuple(numbers) if len(numbers) > 1 else numbers[0]


def _word_params() -> set[str]:
    """Parameters whose value is a word (wsd's shape), not a number."""
    return {p.name for spec in SPECS.values() for p in spec.params if isinstance(p.default, str)}


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """['decay_rate=0.5', 'at_epochs=5,8'] -> {'decay_rate': 0.5, 'at_epochs': (5.0, 8.0)}."""
    values: dict[str, Any] = {}
    words = _word_params()
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"a schedule parameter must look like KEY=VALUE. Received: {item!r}"
            )
        values[key.strip()] = raw.strip() if key.strip() in words else parse_value(raw)
    return values
