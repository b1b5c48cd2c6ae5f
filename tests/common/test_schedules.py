"""Schedules against their closed forms, Keras's built-ins, and save/load round trips."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from common import schedules as S
from common.schedule_registry import SPECS, build_schedule, parse_assignments
from common.schedules import rate_at


def smith_triangular(it, base, peak, step, mode="triangular", gamma=1.0):
    """Smith 2017, Section 3.1 (the paper's pseudo-code)."""
    cycle = math.floor(1 + it / (2 * step))
    x = abs(it / step - 2 * cycle + 1)
    scale = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": gamma**it}[mode]
    return base + (peak - base) * max(0.0, 1 - x) * scale


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
@pytest.mark.parametrize("step", [0, 1, 5, 10, 15, 20, 29, 30, 40, 55])
def test_cyclical_matches_smith(mode, step):
    schedule = S.CyclicalLearningRate(0.01, 0.1, 10, mode=mode, gamma=0.97)
    expected = smith_triangular(step, 0.01, 0.1, 10, mode, 0.97)
    assert rate_at(schedule, step) == pytest.approx(expected, rel=1e-5)


def test_cyclical_cosine_anneals_each_cycle():
    schedule = S.CyclicalLearningRate(0.01, 0.1, 10, mode="cosine")
    assert rate_at(schedule, 0) == pytest.approx(0.1)
    assert rate_at(schedule, 10) == pytest.approx(0.055, rel=1e-5)  # half-way: the mean
    assert rate_at(schedule, 19) < rate_at(schedule, 18)
    assert rate_at(schedule, 20) == pytest.approx(0.1)  # restart


@pytest.mark.parametrize("step", [0, 1, 14, 15, 16, 50, 99, 100, 150])
def test_one_cycle_matches_closed_form(step):
    peak, total, pct, div, final_div = 0.1, 100, 0.15, 25.0, 1e4
    start, end, up = peak / div, peak / div / final_div, round(pct * total)
    if step < up:
        expected = start + (peak - start) * (1 - math.cos(math.pi * step / up)) / 2
    else:
        t = min((step - up) / (total - up), 1.0)
        expected = end + (peak - end) * (1 + math.cos(math.pi * t)) / 2
    schedule = S.OneCycle(peak, total, pct_start=pct, div_factor=div, final_div_factor=final_div)
    assert rate_at(schedule, step) == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_one_cycle_boundaries():
    schedule = S.OneCycle(0.1, 100, pct_start=0.3)
    assert rate_at(schedule, 0) == pytest.approx(0.1 / 25)
    assert rate_at(schedule, 30) == pytest.approx(0.1)
    assert rate_at(schedule, 100) == pytest.approx(0.1 / 25 / 1e4, rel=1e-3)


@pytest.mark.parametrize("step", [0, 1, 99, 3999, 4000, 10000])
def test_transformer_matches_vaswani(step):
    d_model, warmup = 512, 4000
    paper = d_model**-0.5 * min((step + 1) ** -0.5, (step + 1) * warmup**-1.5)
    peak = (d_model * warmup) ** -0.5
    assert rate_at(S.TransformerSchedule(peak, warmup), step) == pytest.approx(paper, rel=1e-5)


@pytest.mark.parametrize("step,expected", [(0, 0.02), (5, 0.06), (10, 0.1), (15, 0.1)])
def test_linear_warmup_starts_from_nonzero_rate(step, expected):
    schedule = S.LinearWarmup(0.1, warmup_steps=10, initial_learning_rate=0.02)
    assert rate_at(schedule, step) == pytest.approx(expected, rel=1e-6)


def test_linear_warmup_shifts_the_wrapped_schedule():
    inner = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    schedule = S.LinearWarmup(inner, warmup_steps=4)
    assert rate_at(schedule, 4) == pytest.approx(0.1)
    assert rate_at(schedule, 14) == pytest.approx(0.05, rel=1e-5)


def test_range_ramp_is_exponential_between_bounds():
    ramp = S.RangeTestRamp(1e-6, 1.0, 7)
    rates = [rate_at(ramp, s) for s in range(7)]
    np.testing.assert_allclose(rates, np.logspace(-6, 0, 7), rtol=1e-4)


def test_registry_step_decay_equals_keras_staircase():
    plan = build_schedule("step", 0.1, steps_per_epoch=10, epochs=10,
                          args={"factor": 0.5, "every_epochs": 3})
    assert rate_at(plan.learning_rate, 29) == pytest.approx(0.1)
    assert rate_at(plan.learning_rate, 30) == pytest.approx(0.1 * 0.5)
    assert rate_at(plan.learning_rate, 60) == pytest.approx(0.1 * 0.25)


def test_registry_drops_at_given_epochs():
    plan = build_schedule("drops", 1.0, steps_per_epoch=10, epochs=10,
                          args={"factor": 0.1, "at_epochs": (2, 5)})
    rates = [rate_at(plan.learning_rate, s) for s in (19, 21, 49, 51)]
    assert rates == pytest.approx([1.0, 0.1, 0.1, 0.01])


def test_registry_cosine_with_warmup_uses_keras_cosine():
    plan = build_schedule("cosine", 0.1, steps_per_epoch=10, epochs=10, warmup_epochs=1)
    keras_own = keras.optimizers.schedules.CosineDecay(0.0, 90, warmup_target=0.1, warmup_steps=10)
    for step in (0, 5, 10, 50, 99):
        assert rate_at(plan.learning_rate, step) == pytest.approx(rate_at(keras_own, step), abs=1e-7)
    assert rate_at(plan.learning_rate, 10) == pytest.approx(0.1)
    assert rate_at(plan.learning_rate, 100) == pytest.approx(0.0, abs=1e-7)


def test_registry_sgdr_restarts_with_decayed_peak():
    plan = build_schedule("cosine_restarts", 0.1, steps_per_epoch=10, epochs=10,
                          args={"first_cycle_epochs": 1, "t_mul": 2.0, "m_mul": 0.5})
    assert rate_at(plan.learning_rate, 0) == pytest.approx(0.1)
    assert rate_at(plan.learning_rate, 10) == pytest.approx(0.05, rel=1e-4)  # restart, halved
    assert rate_at(plan.learning_rate, 30) == pytest.approx(0.025, rel=1e-4)  # second cycle: 20 steps


@pytest.mark.parametrize("name", list(SPECS))
def test_every_registered_schedule_builds_and_stays_positive(name):
    plan = build_schedule(name, 0.01, steps_per_epoch=10, epochs=10)
    rates = np.array([rate_at(plan.learning_rate, s) for s in range(0, 100, 7)])
    assert np.all(np.isfinite(rates)) and np.all(rates >= 0)
    assert rates.max() <= 0.01 * (1 + 1e-5)


@pytest.mark.parametrize("name", [n for n in SPECS if n not in ("constant", "plateau")])
def test_saved_model_keeps_its_schedule(tmp_path, name):
    plan = build_schedule(name, 0.01, steps_per_epoch=10, epochs=10)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(plan.learning_rate), loss="mse")
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    original = model.optimizer._learning_rate
    restored = loaded.optimizer._learning_rate
    assert type(restored) is type(original)
    assert restored.get_config() == original.get_config()
    for step in (0, 17, 63):
        assert rate_at(restored, step) == pytest.approx(rate_at(original, step))


@pytest.mark.parametrize("schedule", [
    S.CyclicalLearningRate(0.001, 0.01, 5, mode="exp_range", gamma=0.9),
    S.OneCycle(0.1, 50),
    S.TransformerSchedule(1e-3, 40),
    S.RangeTestRamp(1e-5, 1.0, 30, mode="linear"),
    S.LinearWarmup(S.OneCycle(0.1, 50), 5, 0.01),
])
def test_serialization_round_trip(schedule):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored.get_config() == schedule.get_config()
    assert rate_at(restored, 7) == pytest.approx(rate_at(schedule, 7))


@pytest.mark.parametrize("name,kwargs,match", [
    ("cosine", {"warmup_epochs": 10}, "warmup must be shorter than training"),
    ("step", {"args": {"factor": 1.5}}, "factor must be in"),
    ("exponential", {"args": {"decay_rate": 2.0}}, "decay_rate must be in"),
    ("triangular", {"args": {"base_fraction": 1.5}}, "base_fraction must be in"),
    ("drops", {"args": {"at_epochs": (5.0, 2.0)}}, "strictly increasing"),
    ("cosine", {"args": {"gamma": 0.5}}, "has no parameter gamma"),
    ("wavy", {}, "Unknown schedule"),
])
def test_bad_schedule_arguments_raise(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_schedule(name, 0.1, steps_per_epoch=10, epochs=10, **kwargs)


def test_schedule_classes_validate_in_init():
    with pytest.raises(ValueError, match="max_learning_rate must be > base_learning_rate"):
        S.CyclicalLearningRate(0.1, 0.01, 10)
    with pytest.raises(ValueError, match="Received: warmup_steps=0"):
        S.TransformerSchedule(1e-3, 0)


def test_parse_assignments():
    assert parse_assignments(["decay_rate=0.5", "at_epochs=5,8"]) == {
        "decay_rate": 0.5, "at_epochs": (5.0, 8.0)}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignments(["decay_rate"])
    with pytest.raises(ValueError, match="must be numbers"):
        parse_assignments(["decay_rate=fast"])


# -- warmup-stable-decay -----------------------------------------------------------------
def wsd_formula(step, peak, total, warmup, decay, shape):
    """Hagele et al. 2024: linear warmup, constant, cool-down to 0 over the last steps."""
    if step < warmup:
        return peak * step / warmup
    start = total - decay
    t = min(max(step - start, 0) / decay, 1.0)
    return peak * (1 - (t if shape == "linear" else math.sqrt(t)))


@pytest.mark.parametrize("shape", ["linear", "1-sqrt"])
def test_wsd_matches_the_formula_per_step(shape):
    # 10 epochs x 10 steps, warmup 1 epoch, cool-down over the last 20 % (steps 80..99).
    plan = build_schedule("wsd", 0.02, steps_per_epoch=10, epochs=10, warmup_epochs=1.0,
                          args={"shape": shape})
    schedule = plan.learning_rate
    assert isinstance(schedule, S.WarmupStableDecay) and schedule.decay_steps == 20
    for step in range(100):
        assert rate_at(schedule, step) == pytest.approx(
            wsd_formula(step, 0.02, 100, 10, 20, shape), rel=1e-5, abs=1e-9), step
    assert rate_at(schedule, 9) == pytest.approx(0.018)  # last warmup step
    assert rate_at(schedule, 10) == pytest.approx(0.02)  # warmup end: the peak
    assert {round(rate_at(schedule, s), 9) for s in range(10, 81)} == {0.02}  # plateau
    assert rate_at(schedule, 90) == pytest.approx(0.01 if shape == "linear"
                                                  else 0.02 * (1 - math.sqrt(0.5)))


def test_wsd_shapes_differ_and_1_sqrt_cools_faster_early():
    linear, root = (build_schedule("wsd", 0.01, steps_per_epoch=10, epochs=5,
                                   args={"shape": s, "decay_fraction": 0.5}).learning_rate
                    for s in ("linear", "1-sqrt"))
    for step in (30, 35, 40, 45):
        assert rate_at(root, step) < rate_at(linear, step)
    assert rate_at(root, 25) == rate_at(linear, 25) == pytest.approx(0.01)


def test_wsd_longer_budget_keeps_the_plateau_and_moves_the_cool_down():
    short = build_schedule("wsd", 0.01, steps_per_epoch=10, epochs=5).learning_rate
    longer = build_schedule("wsd", 0.01, steps_per_epoch=10, epochs=10).learning_rate
    assert rate_at(short, 45) < 0.01 and rate_at(longer, 45) == pytest.approx(0.01)
    for step in range(0, 40):
        assert rate_at(short, step) == rate_at(longer, step)


def test_wsd_arguments_are_checked():
    with pytest.raises(ValueError, match="shape must be one of linear, 1-sqrt"):
        build_schedule("wsd", 0.1, steps_per_epoch=10, epochs=10, args={"shape": "cosine"})
    with pytest.raises(ValueError, match="decay_fraction must be in"):
        build_schedule("wsd", 0.1, steps_per_epoch=10, epochs=10, args={"decay_fraction": 0})
    with pytest.raises(ValueError, match="cool-down must be >= 1 step and fit"):
        build_schedule("wsd", 0.1, steps_per_epoch=10, epochs=10, warmup_epochs=9,
                       args={"decay_fraction": 0.5})
    assert parse_assignments(["shape=linear", "decay_fraction=0.1"]) == {
        "shape": "linear", "decay_fraction": 0.1}
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(
        S.WarmupStableDecay(0.1, 50, 5, 10, shape="linear")))
    assert rate_at(restored, 45) == pytest.approx(0.05)


# -- one-cycle momentum ------------------------------------------------------------------
def test_one_cycle_momentum_mirrors_the_rate():
    schedule = S.OneCycle(0.1, 100, pct_start=0.3)
    assert schedule.momentum(0) == pytest.approx(0.95)
    assert schedule.momentum(30) == pytest.approx(0.85)  # the rate's peak
    assert schedule.momentum(100) == pytest.approx(0.95)
    assert schedule.momentum(15) == pytest.approx(0.90)  # half-way down, cosine
    rates = [rate_at(schedule, s) for s in range(100)]
    moms = [schedule.momentum(s) for s in range(100)]
    assert np.argmax(rates) == np.argmin(moms) == 30
    with pytest.raises(ValueError, match="base_momentum must be in"):
        S.OneCycle(0.1, 100, base_momentum=0.99)
    with pytest.raises(ValueError, match="cycle_momentum must be 1"):
        build_schedule("one_cycle", 0.1, steps_per_epoch=10, epochs=10,
                       args={"cycle_momentum": 0.5})
