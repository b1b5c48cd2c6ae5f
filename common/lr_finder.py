"""The learning-rate range test (Smith 2017; fastai's `lr_find`), on Keras 3.

From the model's initial weights, the rate rises (exponentially by default) from
`start_lr` to `end_lr` over `num_steps` training steps while the batch loss is
recorded. It stops early once the smoothed loss exceeds `stop_factor` times its best
(the divergence rule), restores the initial weights exactly, and suggests rates by
three known rules:

- valley (default): the middle of the descent, from where the loss starts to fall to
  its minimum (fastai's rule in spirit, made robust to a noisy start);
- steepest: where the smoothed loss falls fastest against log(rate);
- minimum / 10: a tenth of the rate at the lowest smoothed loss.

The rate comes from a `RangeTestRamp` schedule evaluated on the optimizer's own step
counter, since Keras 3 will not let a callback set the rate of such an optimizer; the
per-batch loss is recovered from Keras's running means (see `common.callbacks`).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from common.callbacks import StepRecorder
from common.diagnosis import centred_average, smooth
from common.errors import UserError
from common.schedules import RangeTestRamp

SUGGESTION_RULES = ("valley", "steepest", "minimum")
TRIM_START_SHARE = 0.1  # the first steps' smoothed loss is still settling (fastai: //10)
SMOOTHING_WINDOW_SHARE = 1 / 15  # the moving average spans about this share of the ramp
VALLEY_START_SHARE = 0.1  # the descent starts once 10% of the total drop is made
SLOPE_SPAN_SHARE = 1 / 20  # the steepest slope is measured over this share of the ramp


def smoothing_for(num_steps: int) -> float:
    """EMA factor whose window is ~1/15 of the ramp.

    fastai's fixed 0.98 averages over ~50 steps; on a 100-step ramp that lags the loss
    by half a decade of rate, and the suggestions land far too low.
    """
    window = max(4.0, num_steps * SMOOTHING_WINDOW_SHARE)
    return 1.0 - 1.0 / window


@dataclass
class RangeTest:
    learning_rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestions: dict[str, float]
    rule: str
    stopped_early: bool
    wall_time_s: float
    out_dir: Path | None = None
    files: dict[str, str] = field(default_factory=dict)

    @property
    def suggestion(self) -> float:
        return self.suggestions[self.rule]

    def as_summary(self) -> dict[str, Any]:
        return {
            "suggestion": self.suggestion,
            "rule": self.rule,
            "suggestions": self.suggestions,
            "steps": len(self.losses),
            "stopped_early": self.stopped_early,
            "wall_time_s": round(self.wall_time_s, 3),
            "lr_range": [self.learning_rates[0], self.learning_rates[-1]],
            "files": self.files,
        }


class _StopOnDivergence(keras.callbacks.Callback):
    """Stops the ramp when the smoothed loss passes stop_factor x its best, or NaN."""

    def __init__(self, recorder: StepRecorder, stop_factor: float, beta: float):
        super().__init__()
        self.recorder = recorder
        self.stop_factor = stop_factor
        self.beta = beta
        self.stopped = False

    def on_train_batch_end(self, batch, logs=None):
        curve = smooth(self.recorder.losses, self.beta)
        latest = curve[-1]
        best = np.nanmin(curve) if np.isfinite(curve).any() else math.nan
        raw = self.recorder.losses[-1]
        if not math.isfinite(raw) or (len(curve) > 1 and latest > self.stop_factor * best):
            self.stopped = True
            self.model.stop_training = True


def _valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The middle of the descent: from where the loss starts to fall to its minimum.

    The descent starts at the last point before the minimum where the loss is still
    within VALLEY_START_SHARE of the total drop from its starting level. fastai's valley
    takes the longest decreasing subsequence instead; on a noisy flat start that
    subsequence wanders into the flat part and the suggestion lands too low.
    """
    best = int(np.argmin(losses))
    head = max(1, len(losses) // 10)
    level = float(np.median(losses[:head]))
    threshold = level - VALLEY_START_SHARE * (level - float(losses[best]))
    above = np.nonzero(losses[: best + 1] >= threshold)[0]
    start = int(above[-1]) if len(above) else 0
    return float(lrs[(start + best) // 2])


def suggest(lrs: list[float], losses: list[float]) -> dict[str, float]:
    """Suggested rates by each rule, from the raw batch losses of a range test.

    The rules read a centred moving average of the loss: unlike the online EMA used to
    stop the ramp, it does not lag, so a suggestion is not shifted towards lower rates.
    """
    lrs_a = np.asarray(lrs, dtype=float)
    raw = np.asarray(losses, dtype=float)
    keep = np.isfinite(raw)
    lrs_a = lrs_a[keep]
    loss_a = centred_average(raw[keep], max(3, int(len(raw) * SMOOTHING_WINDOW_SHARE) | 1))
    start = int(len(loss_a) * TRIM_START_SHARE)
    lrs_a, loss_a = lrs_a[start:], loss_a[start:]
    if len(loss_a) < 3:
        raise UserError(
            "the range test stopped after too few steps to suggest a rate; lower "
            "--start-lr or raise --num-steps."
        )
    best = int(np.argmin(loss_a))
    # The loss after its minimum is the divergence, not a valley to aim for.
    upto = max(best + 1, 3)
    span = max(1, int(len(loss_a) * SLOPE_SPAN_SHARE))
    logs = np.log(lrs_a[:upto])
    ahead = np.minimum(np.arange(upto) + span, upto - 1)
    behind = np.maximum(np.arange(upto) - span, 0)
    slopes = (loss_a[ahead] - loss_a[behind]) / np.maximum(logs[ahead] - logs[behind], 1e-12)
    return {
        "valley": _valley(lrs_a[:upto], loss_a[:upto]),
        "steepest": float(lrs_a[int(np.argmin(slopes))]),
        "minimum": float(lrs_a[best] / 10.0),
    }


def range_test(
    model,
    train,
    *,
    compile_fn,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exponential",
    stop_factor: float = 4.0,
    beta: float | None = None,
    rule: str = "valley",
) -> RangeTest:
    """Run the range test on `model` and leave its weights exactly as they were.

    Args:
        model: a built Keras model (compiled or not).
        train: a repeating tf.data pipeline of equal-size batches.
        compile_fn: (model, learning_rate_schedule) -> None; compiles with the run's
            optimizer, loss and metrics.
        start_lr, end_lr, num_steps, mode: the ramp (see `RangeTestRamp`).
        stop_factor: stop once the smoothed loss exceeds this multiple of its best.
        beta: smoothing of the loss; None picks `smoothing_for(num_steps)`.
        rule: which suggestion becomes `.suggestion`.
    """
    if rule not in SUGGESTION_RULES:
        raise UserError(
            f"unknown suggestion rule {rule!r}. Expected one of: {', '.join(SUGGESTION_RULES)}"
        )
    if stop_factor <= 1:
        raise UserError(f"stop_factor must be > 1. Received: stop_factor={stop_factor}")
    try:
        ramp = RangeTestRamp(start_lr, end_lr, num_steps, mode=mode)
    except ValueError as error:
        raise UserError(f"range test: {error}") from None
    beta = smoothing_for(num_steps) if beta is None else beta
    initial = [np.array(w) for w in model.get_weights()]
    compile_fn(model, ramp)
    recorder = StepRecorder(log_every=0)
    stopper = _StopOnDivergence(recorder, stop_factor, beta)
    started = time.perf_counter()
    try:
        model.fit(train, epochs=1, steps_per_epoch=num_steps, verbose=0, shuffle=False,
                  callbacks=[recorder, stopper])
    finally:
        model.set_weights(initial)
    wall = time.perf_counter() - started
    smoothed = smooth(recorder.losses, beta).tolist()
    suggestions = suggest(recorder.learning_rates, recorder.losses)
    return RangeTest(
        learning_rates=recorder.learning_rates,
        losses=recorder.losses,
        smoothed=smoothed,
        suggestions=suggestions,
        rule=rule,
        stopped_early=stopper.stopped,
        wall_time_s=wall,
    )


def write_outputs(result: RangeTest, out_dir: Path, title: str) -> None:
    """PNG (loss against log rate, suggestions marked), CSV, JSON and TensorBoard."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tensorflow as tf

    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "range_test.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(("step", "learning_rate", "loss", "smoothed_loss"))
        for i, (lr, loss, sm) in enumerate(
            zip(result.learning_rates, result.losses, result.smoothed, strict=True)
        ):
            writer.writerow((i, f"{lr:.9g}", f"{loss:.9g}", f"{sm:.9g}"))
    figure, axis = plt.subplots(figsize=(7, 4.5))
    axis.plot(result.learning_rates, result.losses, color="0.75", lw=0.8, label="batch loss")
    axis.plot(result.learning_rates, result.smoothed, color="C0", lw=2, label="smoothed loss")
    markers = {"valley": "C2", "steepest": "C1", "minimum": "C3"}
    for name, lr in result.suggestions.items():
        label = f"{name}{' (used)' if name == result.rule else ''}: {lr:.2g}"
        axis.axvline(lr, color=markers[name], ls="--", lw=1.2, label=label)
    axis.set_xscale("log")
    finite = [v for v in result.smoothed if math.isfinite(v)]
    if finite:
        low, high = min(finite), finite[0]
        axis.set_ylim(low - 0.1 * abs(high - low) - 1e-6, high + 1.5 * abs(high - low) + 1e-6)
    axis.set_xlabel("learning rate (log scale)")
    axis.set_ylabel("training loss")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=8)
    figure.tight_layout()
    png_path = out_dir / "range_test.png"
    figure.savefig(png_path, dpi=110)
    plt.close(figure)
    result.out_dir = out_dir
    result.files = {"png": str(png_path), "csv": str(csv_path), "json": str(out_dir / "range_test.json")}
    (out_dir / "range_test.json").write_text(
        json.dumps({**result.as_summary(), "learning_rates": result.learning_rates,
                    "losses": [v if math.isfinite(v) else None for v in result.losses],
                    "smoothed": [v if math.isfinite(v) else None for v in result.smoothed]},
                   indent=2),
        encoding="utf-8",
    )
    writer = tf.summary.create_file_writer(str(out_dir))
    with writer.as_default():
        for i, (lr, sm) in enumerate(zip(result.learning_rates, result.smoothed, strict=True)):
            tf.summary.scalar("range_test/learning_rate", lr, step=i)
            if math.isfinite(sm):
                tf.summary.scalar("range_test/smoothed_loss", sm, step=i)
        image = tf.io.decode_png(tf.io.read_file(str(png_path)), channels=4)
        tf.summary.image("range_test/loss_vs_rate", image[None], step=0)
    writer.flush()


def find_learning_rate(domain, cfg, *, bundle=None, out_dir: Path, start_lr: float = 1e-7,
                       end_lr: float = 10.0, num_steps: int = 100, rule: str = "valley",
                       stop_factor: float = 4.0) -> RangeTest:
    """The range test for a domain's model, built from `cfg` with its seed."""
    from common.distribute import strategy_for
    from common.seed import set_seed
    from common.training import compile_model

    strategy = strategy_for(cfg)
    set_seed(cfg.seed, cfg.deterministic)
    bundle = bundle or domain.load_data(cfg)
    with strategy.scope():  # the same replicas as the run it suggests a rate for
        model = domain.build_model(cfg, bundle)
        result = range_test(
            model,
            bundle.train,
            compile_fn=lambda m, rate: compile_model(domain, cfg, m, rate, bundle),
            start_lr=start_lr,
            end_lr=end_lr,
            num_steps=num_steps,
            stop_factor=stop_factor,
            rule=rule,
        )
    title = (f"LR range test: {domain.name}, {bundle.description}; optimizer {cfg.optimizer}, "
             f"batch {cfg.batch_size}, seed {cfg.seed}, {len(result.losses)} steps")
    write_outputs(result, out_dir, title)
    return result
