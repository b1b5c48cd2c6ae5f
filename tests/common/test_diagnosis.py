"""The diagnosis on crafted curves, then on real toy runs at three rates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common import diagnosis as D
from common.training import run_training
from tests.toy_domain import TOY, ToyConfig

STEPS = np.arange(200)


def test_a_clean_exponential_fall_is_good_and_converges_early():
    losses = 0.1 + 0.9 * np.exp(-STEPS / 20)
    report = D.diagnose(losses.tolist())
    assert report["verdict"] == "good"
    assert 30 < report["convergence_steps"] < 70  # 90% of the drop: ~46 steps + smoothing lag
    assert report["overshoot"] == pytest.approx(0.0, abs=1e-9)


def test_a_flat_curve_is_too_low():
    losses = 1.0 - 0.0001 * STEPS
    report = D.diagnose(losses.tolist())
    assert report["verdict"] == "too_low"
    assert report["loss_drop"] < D.TOO_LOW_MIN_DROP


def test_a_spike_above_the_start_is_too_high():
    losses = np.where(STEPS < 50, 1.0 - STEPS / 100, 3.0)
    report = D.diagnose(losses.tolist())
    assert report["verdict"] == "too_high"
    assert any("rose to" in e for e in report["evidence"])


def test_a_loss_that_climbs_without_blowing_up_is_too_high():
    # A bounded loss (Dice + BCE at a rate of 10) creeps from 1.6 to ~2.2: under the
    # blow-up line, never fell first, yet climbing is no sign of a rate too low.
    rng = np.random.default_rng(0)
    losses = 1.6 + 0.6 * (1 - np.exp(-STEPS / 40)) + 0.05 * rng.normal(size=len(STEPS))
    report = D.diagnose(losses.tolist())
    assert report["verdict"] == "too_high"
    assert any("rose by" in e for e in report["evidence"])


def test_a_slight_noisy_rise_stays_too_low():
    rng = np.random.default_rng(0)
    losses = 1.0 + 0.03 * STEPS / STEPS[-1] + 0.05 * rng.normal(size=len(STEPS))
    assert D.diagnose(losses.tolist())["verdict"] == "too_low"


def test_a_rebound_after_the_best_is_too_high():
    losses = np.concatenate([np.linspace(1.0, 0.2, 100), np.linspace(0.2, 0.7, 100)])
    report = D.diagnose(losses.tolist())
    assert report["verdict"] == "too_high"
    assert 0.35 < report["overshoot"] <= 0.5  # raw rebound 0.5, less the smoothing lag


def test_an_oscillating_epoch_loss_that_ends_high_is_too_high():
    losses = np.linspace(1.0, 0.6, 200)
    report = D.diagnose(losses.tolist(), epoch_losses=[0.9, 0.6, 0.8, 0.5, 0.9, 0.7])
    assert report["verdict"] == "too_high"


def test_epoch_noise_on_a_flat_loss_is_not_oscillation():
    losses = 0.693 + 0.005 * np.sin(STEPS)
    report = D.diagnose(losses.tolist(), epoch_losses=[0.6942, 0.6952, 0.6948, 0.6944])
    assert report["verdict"] == "too_low"


def test_a_collapsing_objective_is_too_high_even_when_the_loss_falls():
    losses = 1.3 - 0.1 * STEPS / 200  # Dice + BCE: BCE falls as all pixels go to background
    report = D.diagnose(losses.tolist(), objective_history=[0.216, 0.185, 0.037])
    assert report["verdict"] == "too_high"
    assert any("objective fell from its best" in e for e in report["evidence"])
    calm = D.diagnose(losses.tolist(), objective_history=[0.2, 0.25, 0.24])
    assert not any("objective fell" in e for e in calm["evidence"])
    # A validation loss that rises is usually overfitting: not read as a collapse.
    report = D.diagnose(losses.tolist(), objective_history=[1.0, 0.4, 0.9], direction="min")
    assert not any("objective fell" in e for e in report["evidence"])


def test_an_objective_that_never_leaves_zero_is_never_good():
    # DRIVE at rate 1: the loss falls fast (BCE learns the background prior), Dice stays 0.
    fast = 0.8 + 0.5 * np.exp(-STEPS / 8)
    assert D.diagnose(fast.tolist())["verdict"] == "good"  # the loss alone looks fine
    report = D.diagnose(fast.tolist(), objective_history=[0.0, 0.0, 0.0])
    assert report["verdict"] == "too_high"
    assert any("stayed at 0 in all 3 epochs" in e for e in report["evidence"])
    # A slow fall with Dice still 0: learning has not started yet.
    slow = 1.3 - 0.3 * STEPS / 200
    report = D.diagnose(slow.tolist(), objective_history=[0.0, 0.0, 0.0])
    assert report["verdict"] == "too_low"
    assert any("has not left the class prior" in e for e in report["evidence"])
    # Zero only at the first epoch, one epoch alone, or a loss to minimise: no such evidence.
    for history, direction in (([0.0, 0.3, 0.5], "max"), ([0.0], "max"), ([0.0, 0.0], "min")):
        report = D.diagnose(fast.tolist(), objective_history=history, direction=direction)
        assert report["verdict"] == "good", (history, direction)


def test_nan_is_too_high_and_keeps_the_reason():
    report = D.diagnose([1.0, 0.9, math.nan], diverged=True, divergence_reason="the loss became nan")
    assert report["verdict"] == "too_high"
    assert "the loss became nan" in report["evidence"][0]


def test_a_rate_far_below_the_range_test_suggestion_is_too_low():
    losses = 0.1 + 0.9 * np.exp(-STEPS / 20)
    report = D.diagnose(losses.tolist(), learning_rate=1e-4, suggested_learning_rate=1e-2)
    assert report["verdict"] == "too_low"


def test_stability_grows_with_noise():
    rng = np.random.default_rng(0)
    trend = 0.1 + 0.9 * np.exp(-STEPS / 20)
    calm = D.diagnose((trend * (1 + 0.01 * rng.normal(size=200))).tolist())["stability"]
    noisy = D.diagnose((trend * (1 + 0.2 * rng.normal(size=200))).tolist())["stability"]
    assert noisy > 5 * calm


@pytest.mark.parametrize("rate,verdict", [(1e-7, "too_low"), (0.1, "good"), (10.0, "too_high")])
def test_real_runs_get_the_expected_verdict(tmp_path, rate, verdict):
    cfg = ToyConfig(learning_rate=rate, epochs=2, output=str(tmp_path), verbose=0)
    summary = run_training(TOY, cfg, announce=False).summary
    assert summary["diagnosis"]["verdict"] == verdict, summary["diagnosis"]["evidence"]


def _summary(history, **extra):
    return {"status": "completed", "learning_rate": 1e-3, "objective": "val_accuracy",
            "direction": "max", "history": history, **extra}


def test_rising_val_loss_with_falling_train_loss_is_flagged_as_overfitting():
    from common.diagnosis import diagnose_run

    losses = list(np.linspace(0.7, 0.1, 200))
    history = {"loss": [0.6, 0.4, 0.25, 0.15], "val_loss": [0.52, 0.505, 0.62, 0.764],
               "val_accuracy": [0.74, 0.76, 0.75, 0.75]}
    report = diagnose_run(_summary(history), losses)
    assert "overfitting" in report["flags"]
    assert any("0.505 -> 0.764" in e for e in report["evidence"])
    calm = {**history, "val_loss": [0.52, 0.50, 0.49, 0.485]}
    assert "overfitting" not in diagnose_run(_summary(calm), losses)["flags"]


def test_a_good_run_still_improving_at_its_last_epoch_is_flagged_under_trained():
    from common.diagnosis import diagnose_run

    losses = list(np.linspace(0.7, 0.3, 200))
    rising = {"loss": [0.6, 0.5, 0.4], "val_loss": [0.6, 0.55, 0.5],
              "val_accuracy": [0.60, 0.65, 0.70]}
    report = diagnose_run(_summary(rising), losses)
    assert report["verdict"] == "good" and report["flags"] == ["under_trained"]
    flat = {**rising, "val_accuracy": [0.60, 0.70, 0.701]}
    assert diagnose_run(_summary(flat), losses)["flags"] == []


def test_a_weak_range_test_is_no_evidence_against_a_rate():
    from common.diagnosis import diagnose_run

    losses = list(np.linspace(0.7, 0.3, 200))
    history = {"loss": [0.6, 0.5, 0.45], "val_loss": [0.6, 0.55, 0.54],
               "val_accuracy": [0.70, 0.72, 0.7201]}
    strong = {"suggestion": 0.1}
    weak = {"suggestion": 0.1, "warning": "the smoothed loss fell by only 1.4%"}
    assert diagnose_run(_summary(history, lr_find=strong), losses)["verdict"] == "too_low"
    assert diagnose_run(_summary(history, lr_find=weak), losses)["verdict"] == "good"
