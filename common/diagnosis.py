"""A verdict on a run's learning rate, from its recorded loss curve.

The verdict is `too_high`, `too_low` or `good`, with the evidence that decided it and
four figures that measure what seed 003's comparison table only asserts:

- convergence_steps: steps until the loss trend first covers CONVERGED_SHARE of the
  run's total drop (fewer is faster);
- stability: the spread of the batch loss around its centred moving average after
  warmup, relative to that average (lower is steadier);
- overshoot: how far the loss trend climbed back above its best, relative to the
  starting loss (0 when it never did);
- final performance: the run's final objective value (passed in).

The trend is a centred moving average of the batch loss: an EMA lags, and a lagging
curve makes a fast, healthy fall look like a spike above its start.
Every threshold is a named constant below; tests feed crafted curves through them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

SMOOTHING_BETA = 0.9  # EMA of the batch loss, bias-corrected (as fastai's recorder)
CONVERGED_SHARE = 0.9  # convergence = 90% of the total smoothed loss drop
TOO_LOW_MIN_DROP = 0.05  # the loss fell by less than 5% from the run's first to last tenth
DROP_NOISE_SIGMAS = 3.0  # ... or by less than 3 standard errors of those two means
TOO_LOW_BELOW_SUGGESTION = 30.0  # the rate sits 30x or more below the range test's
SPIKE_ABOVE_START = 0.5  # the loss trend rose 50% above the initial loss: steps too large
SPIKE_NOISE_SIGMAS = 4.0  # ... and by more than 4x the scatter of that short average
SPIKE_WINDOW = 5  # steps averaged when looking for a blow-up
REBOUND_SHARE = 0.5  # the loss climbed back over half of the drop it had made
REBOUND_MIN_FALL = 0.2  # without 3 epochs, the step trend must have fallen 20% first
REBOUND_NOISE_SIGMAS = 4.0  # ... and fallen and climbed by 4 standard errors of the trend
OSCILLATION_SIGN_CHANGES = 0.5  # half or more of the epoch-to-epoch moves reverse
OSCILLATION_MIN_SWING = 0.05  # ... and the epoch losses span 5% of the start or more
HIGH_UPDATE_RATIO = 1e-1  # update/weight ratio per step; ~1e-3 is healthy
LOW_UPDATE_RATIO = 1e-5
LOSS_RISE_SHARE = 0.2  # the loss ended 20% above where it began (first vs last tenth)
OBJECTIVE_COLLAPSE_SHARE = 0.5  # the objective ended over 50% below its best epoch
OBJECTIVE_ZERO = 1e-6  # a score to maximise at or under this in every epoch never left 0 ...
STUCK_SETTLED_SHARE = 0.25  # ... and a loss settled within this share of the steps: too high
STABILITY_WINDOW = 11  # steps in the centred moving average the noise is measured around
OVERFIT_MIN_RISES = 2  # val loss rose in each of the last 2+ epochs ...
OVERFIT_MIN_RISE = 0.1  # ... by 10% or more over its best, while the train loss fell
STILL_IMPROVING_GAIN = 0.005  # the last epoch beat the best before it by 0.5% or more
# Sharpness against the rate's stability threshold (2/lr, 38/lr for Adam; common.sharpness).
# At the edge of stability it hovers at the threshold, so only a clear excess counts.
SHARPNESS_OVER_FACTOR = 1.2  # the sharpness 20% or more over its threshold ...
SHARPNESS_OVER_SHARE = 0.3  # ... at 30% or more of the probed steps ...
# ... and still over it at the end: the median ratio of the last third of the readings. A
# good rate may overshoot the threshold and fall back to hover at it (the edge of stability,
# measured on rt_polarity with Adam at 1e-3: 10x mid-run, 1.0x at the end); only a rate
# whose sharpness cannot come back under is too high.
SHARPNESS_SETTLED_TAIL = 1 / 3
SHARPNESS_UNDER_FACTOR = 1e-2  # median sharpness two orders of magnitude under it ...
SHARPNESS_SLOW_DROP = 0.5  # ... while the loss fell by less than half: room to go faster


def smooth(losses: Sequence[float], beta: float = SMOOTHING_BETA) -> np.ndarray:
    """Bias-corrected exponential moving average; NaN/Inf entries are skipped."""
    out = np.empty(len(losses))
    average, count = 0.0, 0
    for i, value in enumerate(losses):
        if math.isfinite(value):
            count += 1
            average = beta * average + (1 - beta) * value
        out[i] = average / (1 - beta**count) if count else math.nan
    return out


def spike_check(losses: Sequence[float]) -> tuple[float, float]:
    """(peak, threshold): the peak of a short moving average of the batch loss, and the
    level above which that peak is a blow-up rather than noise.

    The peak must clear both the first batch's loss (computed before any update) and the
    median of the first 10% of the run, each by SPIKE_ABOVE_START of itself or by
    SPIKE_NOISE_SIGMAS times the scatter of the short average over the run's second half,
    whichever is larger. A short window keeps a blow-up of a few steps visible in a long
    run; the two references keep one lucky first batch, or a fast healthy fall, from
    passing for a spike.
    """
    raw = np.asarray(losses, dtype=float)
    raw = raw[np.isfinite(raw)]
    short = centred_average(raw, SPIKE_WINDOW)
    noise = float(np.std(short[len(short) // 2:])) if len(short) >= 4 else 0.0
    first = float(raw[0])
    early = float(np.median(raw[: max(1, len(raw) // 10)]))

    def level(reference: float) -> float:
        return reference + max(SPIKE_ABOVE_START * abs(reference), SPIKE_NOISE_SIGMAS * noise)

    return float(np.max(short)), max(level(first), level(early))


def objective_collapse(history: Sequence[float], direction: str = "max") -> str:
    """Evidence that a score to maximise fell back by over OBJECTIVE_COLLAPSE_SHARE of its
    best (e.g. val Dice 0.22 -> 0.04 as the model settles on all background), or ""."""
    values = [float(v) for v in history if v is not None and math.isfinite(float(v))]
    # Only scores that grow (accuracy, Dice, BLEU): a validation loss that rises is
    # usually overfitting, not a rate that is too high.
    if len(values) < 2 or direction != "max":
        return ""
    best, final = max(values), values[-1]
    if best > 0 and best - final > OBJECTIVE_COLLAPSE_SHARE * best:
        return (f"the objective fell from its best {best:.4g} to {final:.4g} by the end: "
                "over half of it lost while training went on")
    return ""


def objective_never_rose(history: Sequence[float], direction: str = "max") -> str:
    """Evidence that a score to maximise stayed at 0 in every epoch (2 or more), e.g. val
    Dice 0 when every pixel is predicted background, or ""."""
    values = [float(v) for v in history if v is not None and math.isfinite(float(v))]
    if len(values) < 2 or direction != "max" or max(values) > OBJECTIVE_ZERO:
        return ""
    return (f"the objective stayed at 0 in all {len(values)} epochs: the model predicts one "
            "constant (for a segmentation, all background)")


def loss_drop(losses: Sequence[float]) -> tuple[float, bool]:
    """(relative fall from the first to the last tenth of the run's batch losses,
    whether that change, fall or rise, exceeds DROP_NOISE_SIGMAS standard errors of the
    difference of the two means)."""
    raw = np.asarray(losses, dtype=float)
    raw = raw[np.isfinite(raw)]
    size = min(len(raw) // 2, max(5, len(raw) // 10))
    if size < 2:
        return 0.0, False
    head, tail = raw[:size], raw[-size:]
    fall = float(np.mean(head) - np.mean(tail))
    # Noise from the second half's scatter around its trend: a fast fall inside the
    # first tenth is signal, not noise.
    later = raw[len(raw) // 2:]
    scatter = float(np.std(later - centred_average(later, STABILITY_WINDOW)))
    error = scatter * float(np.sqrt(2.0 / size))
    start = float(np.mean(head))
    return (fall / abs(start) if start else 0.0), abs(fall) > DROP_NOISE_SIGMAS * error


def trend_error(losses: Sequence[float]) -> float:
    """The standard error of one point of the loss trend: the batch loss's scatter
    around the trend over the square root of the trend's window."""
    values = np.asarray(losses, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 3:
        return 0.0
    window = max(STABILITY_WINDOW, len(values) // 20) | 1
    scatter = float(np.std(values - centred_average(values, window)))
    return scatter / float(np.sqrt(window))


def rebound_check(curve: np.ndarray, epoch_losses: Sequence[float],
                  noise: float = 0.0) -> str:
    """Evidence that the loss fell and then climbed back over REBOUND_SHARE of its drop,
    or "". With 3 or more epochs it reads the epoch losses (averages over many batches,
    so noise does not pass for a rebound); otherwise the step trend, which must first
    have fallen by REBOUND_MIN_FALL of its start, and whose fall and climb must each
    exceed REBOUND_NOISE_SIGMAS times `noise` (the trend's standard error): a flat,
    noisy loss wanders by that much without any rebound."""
    if len(epoch_losses) >= 3:
        values, what, min_fall = np.asarray(epoch_losses, dtype=float), "epoch loss", TOO_LOW_MIN_DROP
        noise = 0.0
    else:
        values, what, min_fall = np.asarray(curve, dtype=float), "loss trend", REBOUND_MIN_FALL
    start, best, final = float(values[0]), float(np.min(values)), float(values[-1])
    fell = start - best
    margin = REBOUND_NOISE_SIGMAS * noise
    if fell > max(min_fall * abs(start), margin) and final - best > max(REBOUND_SHARE * fell,
                                                                        margin):
        return (f"the {what} fell from {start:.4g} to {best:.4g}, then climbed back to "
                f"{final:.4g}: over {REBOUND_SHARE:.0%} of its drop")
    return ""


def trend(losses: Sequence[float]) -> np.ndarray:
    """The loss trend: a centred moving average (no lag, unlike an EMA), finite values only.

    The window is STABILITY_WINDOW steps or 1/20 of the run, whichever is longer.
    """
    values = np.asarray(losses, dtype=float)
    values = values[np.isfinite(values)]
    return centred_average(values, max(STABILITY_WINDOW, len(values) // 20) | 1)


def centred_average(values: Sequence[float], window: int) -> np.ndarray:
    """Mean over `window` points centred on each point, shrinking at the ends."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return values
    half = window // 2
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    lows = np.maximum(np.arange(len(values)) - half, 0)
    highs = np.minimum(np.arange(len(values)) + half + 1, len(values))
    return (cumulative[highs] - cumulative[lows]) / (highs - lows)


def noise_level(losses: Sequence[float], skip: int = 0, window: int = STABILITY_WINDOW) -> float | None:
    """Spread of the batch loss around a centred moving average, relative to it.

    A centred window has no lag, so a steadily falling curve counts as calm; only the
    step-to-step scatter counts.
    """
    values = np.asarray(losses, dtype=float)[skip:]
    values = values[np.isfinite(values)]
    window = min(window, len(values) // 2 * 2 - 1)
    if window < 3:
        return None
    trend = np.convolve(values, np.ones(window) / window, mode="valid")
    half = window // 2
    middle = values[half: len(values) - half]
    ok = np.abs(trend) > 0
    if ok.sum() < 2:
        return None
    return float(np.std((middle[ok] - trend[ok]) / np.abs(trend[ok])))


def sign_change_fraction(values: Sequence[float]) -> float:
    """Share of consecutive moves that reverse direction (0 for a monotone curve)."""
    moves = np.sign(np.diff(np.asarray(values, dtype=float)))
    moves = moves[moves != 0]
    if len(moves) < 2:
        return 0.0
    return float(np.mean(moves[1:] != moves[:-1]))


def sharpness_figures(records: Sequence[dict[str, float]] | None) -> dict[str, float] | None:
    """From the probe's readings (dicts with "sharpness" and "threshold"): the share of
    readings over SHARPNESS_OVER_FACTOR x the threshold, the median ratio of the last third
    (`settled_ratio`), the median and the largest sharpness/threshold ratio. None without
    readings that have a threshold."""
    ratios = [float(r["sharpness"]) / float(r["threshold"]) for r in records or ()
              if math.isfinite(float(r["threshold"])) and float(r["threshold"]) > 0
              and math.isfinite(float(r["sharpness"]))]
    if not ratios:
        return None
    over = [r for r in ratios if r >= SHARPNESS_OVER_FACTOR]
    tail = ratios[-max(1, round(len(ratios) * SHARPNESS_SETTLED_TAIL)):]
    return {"readings": len(ratios), "share_over": len(over) / len(ratios),
            "settled_ratio": float(np.median(tail)),
            "median_ratio": float(np.median(ratios)), "max_ratio": max(ratios),
            "median_ratio_over": float(np.median(over)) if over else None}


def sharpness_over_evidence(figures: dict[str, float] | None) -> str:
    """Evidence for too_high: the sharpness well over its threshold at many probed steps
    and still over it at the end of the run."""
    if figures is None or figures["share_over"] < SHARPNESS_OVER_SHARE \
            or figures["settled_ratio"] < SHARPNESS_OVER_FACTOR:
        return ""
    return (f"sharpness {figures['median_ratio_over']:.2g}x over its stability threshold "
            f"for {figures['share_over']:.0%} of probed steps and {figures['settled_ratio']:.2g}x "
            f"at the end (limits: {SHARPNESS_OVER_FACTOR:g}x at {SHARPNESS_OVER_SHARE:.0%}, "
            "still over in the last third): steps too large for the curvature")


def sharpness_under_evidence(figures: dict[str, float] | None, drop: float) -> str:
    """Evidence for too_low: the sharpness far under its threshold, the loss slow to fall."""
    if figures is None or figures["median_ratio"] > SHARPNESS_UNDER_FACTOR \
            or drop >= SHARPNESS_SLOW_DROP:
        return ""
    return (f"sharpness at {figures['median_ratio']:.2g} of its stability threshold "
            f"(median; {SHARPNESS_UNDER_FACTOR:g} or less is two orders under) while the "
            f"loss fell by {drop:.1%}: the rate could be far larger")


def diagnose(
    losses: Sequence[float],
    *,
    diverged: bool = False,
    divergence_reason: str = "",
    epoch_losses: Sequence[float] = (),
    warmup_steps: int = 0,
    learning_rate: float | None = None,
    suggested_learning_rate: float | None = None,
    update_ratios: Sequence[float] = (),
    final_metric: tuple[str, float] | None = None,
    objective_history: Sequence[float] = (),
    direction: str = "max",
    sharpness_records: Sequence[dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Diagnose a run from its per-step (batch) losses.

    Args:
        losses: the batch loss of every training step, in order.
        diverged: whether the divergence watch stopped the run.
        divergence_reason: its sentence, quoted as evidence.
        epoch_losses: the training loss of each epoch, for the oscillation test.
        warmup_steps: steps to leave out of the stability figure.
        learning_rate: the run's (peak) rate, compared with the suggestion.
        suggested_learning_rate: the range test's suggestion, if one was made.
        update_ratios: global update/weight ratios sampled during training.
        final_metric: (name, value) of the final objective, reported as is.
        objective_history: the objective per epoch (e.g. val Dice), to catch a metric
            that collapses while the loss still falls.
        direction: "max" or "min": which way the objective improves.
        sharpness_records: the sharpness probe's readings (dicts with "sharpness" and
            "threshold"), or None when it did not run.

    Returns:
        {"verdict", "evidence": [...], "convergence_steps", "stability", "overshoot",
         "loss_drop", "final_metric"}; figures are None when there are too few steps.
    """
    evidence: list[str] = []
    finite = trend(losses)
    report: dict[str, Any] = {
        "convergence_steps": None,
        "stability": None,
        "overshoot": None,
        "loss_drop": None,
        "final_metric": dict([final_metric]) if final_metric else None,
        "thresholds": {
            "too_low_min_drop": TOO_LOW_MIN_DROP,
            "too_low_below_suggestion": TOO_LOW_BELOW_SUGGESTION,
            "spike_above_start": SPIKE_ABOVE_START,
            "rebound_share": REBOUND_SHARE,
            "loss_rise_share": LOSS_RISE_SHARE,
            "oscillation_sign_changes": OSCILLATION_SIGN_CHANGES,
            "sharpness_over_factor": SHARPNESS_OVER_FACTOR,
            "sharpness_over_share": SHARPNESS_OVER_SHARE,
            "sharpness_settled_tail": SHARPNESS_SETTLED_TAIL,
            "sharpness_under_factor": SHARPNESS_UNDER_FACTOR,
            "sharpness_slow_drop": SHARPNESS_SLOW_DROP,
            "objective_zero": OBJECTIVE_ZERO,
            "stuck_settled_share": STUCK_SETTLED_SHARE,
        },
    }
    sharpness = sharpness_figures(sharpness_records)
    if sharpness is not None:
        report["sharpness"] = sharpness
    if diverged:
        evidence.append(f"diverged: {divergence_reason or 'the loss became NaN or Inf'}")
    if len(finite) >= 2:
        start, final = float(finite[0]), float(finite[-1])
        drop, significant = loss_drop(losses)
        report["loss_drop"] = drop
        total_drop = start - final
        if total_drop > 0:
            target = start - CONVERGED_SHARE * total_drop
            reached = np.nonzero(finite <= target)[0]
            report["convergence_steps"] = int(reached[0]) if len(reached) else None
        running_best = np.minimum.accumulate(finite)
        report["overshoot"] = float(np.max(finite - running_best) / abs(start)) if start else 0.0
        report["stability"] = noise_level(losses, warmup_steps)

        peak, threshold = spike_check(losses)
        if peak > threshold:
            evidence.append(
                f"the loss rose to {peak:.4g} (average of {SPIKE_WINDOW} steps), above "
                f"{threshold:.4g}: a blow-up past the initial loss"
            )
        rebound = rebound_check(finite, epoch_losses, trend_error(losses))
        if rebound:
            evidence.append(rebound)
        collapse = objective_collapse(objective_history, direction)
        if collapse:
            evidence.append(collapse)
        if len(epoch_losses) >= 3:
            changes = sign_change_fraction(epoch_losses)
            swing = (max(epoch_losses) - min(epoch_losses)) / abs(start) if start else 0.0
            rising = epoch_losses[-1] - min(epoch_losses) > 0.25 * swing * abs(start)
            if changes >= OSCILLATION_SIGN_CHANGES and rising and swing >= OSCILLATION_MIN_SWING:
                evidence.append(
                    f"the epoch loss oscillated ({changes:.0%} of moves reversed) and "
                    "ended above its minimum"
                )
        if drop <= -LOSS_RISE_SHARE and significant:
            # A rate too small cannot make the loss climb; a bounded loss (Dice) that
            # never crosses the blow-up line still shows it this way.
            evidence.append(
                f"the loss rose by {-drop:.1%} from the first to the last tenth of the run"
                f" (threshold {LOSS_RISE_SHARE:.0%}): steps too large"
            )
        over = sharpness_over_evidence(sharpness)
        if over:
            evidence.append(over)
        too_high = bool(evidence)
        under = sharpness_under_evidence(sharpness, drop)
        median_ratio = float(np.median(update_ratios)) if len(update_ratios) else None
        if not too_high and (drop < TOO_LOW_MIN_DROP or not significant):
            if median_ratio is not None and median_ratio >= HIGH_UPDATE_RATIO:
                evidence.append(
                    f"the loss did not fall ({drop:.1%}) while each step changed the "
                    f"weights by {median_ratio:.2g} of their size: steps too large"
                )
                too_high = True
            elif drop < TOO_LOW_MIN_DROP:
                moved = f"fell by only {drop:.1%}" if drop >= 0 else f"rose by {-drop:.1%}"
                evidence.append(
                    f"the loss {moved} from the first to the last tenth of the run "
                    f"(a fall of {TOO_LOW_MIN_DROP:.0%} or more is progress)"
                )
            else:
                evidence.append(
                    f"the loss fell by {drop:.1%}, within {DROP_NOISE_SIGMAS:g} standard "
                    "errors of its batch-to-batch noise: no real progress"
                )
            if not too_high and under:
                evidence.append(under)
        never_rose = objective_never_rose(objective_history, direction)
        if never_rose and not too_high:
            # The loss can still fall (BCE learns the class prior): a loss that settles
            # early means large steps left nothing else to learn; a slow one, none yet.
            steps = report["convergence_steps"]
            too_high = steps is not None and steps <= STUCK_SETTLED_SHARE * len(finite)
            evidence.append(never_rose + (
                f"; the loss settled within the first {STUCK_SETTLED_SHARE:.0%} of the steps, "
                "as when large steps leave only the class prior" if too_high else
                "; the loss is still falling slowly: training has not left the class prior"))
        if diverged:
            too_high = True
        if too_high:
            verdict = "too_high"
        elif evidence:
            verdict = "too_low"
        elif (
            suggested_learning_rate
            and learning_rate
            and learning_rate * TOO_LOW_BELOW_SUGGESTION <= suggested_learning_rate
        ):
            verdict = "too_low"
            evidence.append(
                f"the rate {learning_rate:.2g} is {suggested_learning_rate / learning_rate:.0f}x "
                f"below the range test's suggestion {suggested_learning_rate:.2g}"
            )
        elif under:
            verdict = "too_low"
            evidence.append(under)
        elif median_ratio is not None and median_ratio <= LOW_UPDATE_RATIO and drop < 0.5:
            verdict = "too_low"
            evidence.append(
                f"each step changed the weights by only {median_ratio:.2g} of their size"
            )
        else:
            verdict = "good"
            evidence.append(
                f"the loss trend fell by {drop:.1%} without blow-ups, rebounds or "
                "divergence"
            )
    else:
        verdict = "too_high" if diverged else "unknown"
        if not diverged:
            evidence.append("too few steps to judge")
    report["verdict"] = verdict
    report["evidence"] = evidence
    return report


def diagnose_run(summary: dict[str, Any], losses: Sequence[float]) -> dict[str, Any]:
    """The diagnosis of a finished run from its summary and per-step losses.

    Training and `lrsuite report --rediagnose` both call this, so a re-diagnosed run
    sees the same evidence (warmup, update ratios, the range test's suggestion) and
    only new rules can change its verdict.
    """
    objective = summary.get("objective")
    value = summary.get(objective) if objective else None
    value = float(value) if isinstance(value, (int, float)) else None
    history = summary.get("history", {})
    report = diagnose(
        list(losses),
        diverged=summary.get("status") == "diverged",
        divergence_reason=summary.get("divergence", {}).get("reason", ""),
        epoch_losses=history.get("loss", []),
        warmup_steps=int(summary.get("warmup_steps", 0)),
        learning_rate=float(summary["learning_rate"]),
        suggested_learning_rate=trusted_suggestion(summary.get("lr_find") or {}),
        update_ratios=summary.get("update_ratios", []),
        final_metric=(objective, value) if value is not None and math.isfinite(value) else None,
        objective_history=history.get(objective, []) if objective else [],
        direction=summary.get("direction", "max"),
        sharpness_records=summary.get("sharpness", {}).get("records"),
    )
    flags = []
    overfit = overfitting(history.get("val_loss", []), history.get("loss", []))
    if overfit:
        flags.append("overfitting")
        report["evidence"].append(overfit)
    if report["verdict"] == "good" and summary.get("status") == "completed":
        improving = still_improving(history.get(objective, []) if objective else [],
                                    summary.get("direction", "max"))
        if improving:
            flags.append("under_trained")
            report["evidence"].append(improving)
    report["flags"] = flags
    return report


def trusted_suggestion(range_test: dict[str, Any]) -> float | None:
    """The range test's suggestion as evidence, unless the test warned that its loss
    barely moved: a suggestion read off noise must not make a good rate 'too low'."""
    if range_test.get("warning"):
        return None
    return range_test.get("suggestion")


def overfitting(val_losses: Sequence[float], train_losses: Sequence[float]) -> str:
    """A sentence when the validation loss climbs at the end while the training loss
    falls (seed 003: a sign of a rate too large, or of a run too long), else ''."""
    val = [float(v) for v in val_losses]
    if len(val) < OVERFIT_MIN_RISES + 1 or len(train_losses) != len(val):
        return ""
    rises = 0
    for before, after in zip(val[-2::-1], val[:0:-1], strict=True):  # from the end back
        if after <= before:
            break
        rises += 1
    best = min(val)
    first = len(val) - 1 - rises
    if rises < OVERFIT_MIN_RISES or best <= 0 or val[-1] < best * (1 + OVERFIT_MIN_RISE):
        return ""
    if not train_losses[-1] < train_losses[first]:
        return ""
    return (f"the validation loss rose in each of the last {rises} epochs ({val[first]:.4g} -> "
            f"{val[-1]:.4g}) while the training loss fell: the model fits the training set "
            "and loses the rest (a rate too large, or a run longer than it needs)")


def still_improving(history: Sequence[float], direction: str) -> str:
    """A sentence when the objective's last epoch is its best by a clear margin, else ''."""
    values = [float(v) for v in history if math.isfinite(float(v))]
    if len(values) < 2:
        return ""
    before = max(values[:-1]) if direction == "max" else min(values[:-1])
    gain = (values[-1] - before) if direction == "max" else (before - values[-1])
    if gain <= STILL_IMPROVING_GAIN * max(abs(before), 1e-12):
        return ""
    return (f"the objective was still improving at the last epoch ({before:.4g} -> "
            f"{values[-1]:.4g}): under-trained at this budget, a longer run would gain")
