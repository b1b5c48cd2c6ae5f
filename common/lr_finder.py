"""The learning-rate range test (Smith 2017; fastai's `lr_find`), on Keras 3.

From the model's initial weights, the rate rises exponentially from `start_lr` to
`end_lr` over `num_steps` training steps while the batch loss is recorded. The test is
an ordinary short run on the one training path (the `range_test` schedule), so it gets
a run directory like any other (config, summary, steps.csv, TensorBoard); the run's
divergence watch ends it once the smoothed loss exceeds `stop_factor` times its best
and its start. From the recorded steps it suggests rates by three known rules:

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
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.diagnosis import centred_average, smooth
from common.errors import UserError
from common.figures import pyplot, save_figure
from common.schedules import RangeTestRamp

SUGGESTION_RULES = ("valley", "steepest", "minimum")
TRIM_START_SHARE = 0.1  # the first steps' smoothed loss is still settling (fastai: //10)
SMOOTHING_WINDOW_SHARE = 1 / 15  # the moving average spans about this share of the ramp
VALLEY_START_SHARE = 0.1  # the descent starts once 10% of the total drop is made
SLOPE_SPAN_SHARE = 1 / 20  # the steepest slope is measured over this share of the ramp
WEAK_DROP_SHARE = 0.05  # the smoothed loss fell by under 5% before its minimum: weak evidence


RANGE_TEST_DESCRIPTIONS = {
    "learning_rate": "The rate of each step of the range test: it grows exponentially from "
                     "--start-lr to --end-lr (tick 'Log' on the y axis).",
    "smoothed_loss": "The training loss, smoothed, at each step of the range test; read it "
                     "against range_test/learning_rate at the same step.",
    "loss_vs_rate": "The smoothed loss against the rate (log axis), with the suggestions.",
}


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

    @property
    def warning(self) -> str:
        """A sentence when the loss barely moved during the ramp, else ''."""
        finite = [v for v in self.smoothed if math.isfinite(v)]
        if len(finite) < 3:
            return ""
        head = finite[: max(1, len(finite) // 10)]
        start, low = float(np.median(head)), min(finite)
        drop = (start - low) / abs(start) if start else 0.0
        if drop >= WEAK_DROP_SHARE:
            return ""
        return (f"the smoothed loss fell by only {drop:.1%} ({start:.4g} -> {low:.4g}) before "
                "its minimum: the suggestion rests on little; try more --num-steps, a wider "
                "--start-lr/--end-lr, or a sweep")

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
            "warning": self.warning,
        }


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


def plot_range(smoothed: list[float]) -> tuple[float | None, float | None]:
    """The y range that frames the smoothed curve: its minimum to its highest point
    before the minimum, with room above for the start of the divergence."""
    finite = np.asarray([v for v in smoothed if math.isfinite(v)], dtype=float)
    if not len(finite):
        return None, None
    best = int(np.argmin(finite))
    low, top = float(finite[best]), float(np.max(finite[: best + 1]))
    span = max(top - low, 1e-3 * max(abs(low), 1e-12))
    return low - 0.15 * span, top + 0.6 * span


def write_outputs(result: RangeTest, out_dir: Path, title: str) -> None:
    """PNG (loss against log rate, suggestions marked), CSV, JSON and TensorBoard."""
    import tensorflow as tf

    plt = pyplot()

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
    low, high = plot_range(result.smoothed)
    if low is not None:
        axis.set_ylim(low, high)
    axis.set_xlabel("learning rate (log scale)")
    axis.set_ylabel("training loss")
    axis.set_title(textwrap.fill(title, 80), fontsize=8)
    axis.legend(fontsize=8)
    png_path = save_figure(figure, out_dir / "range_test.png", dpi=110)
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
            tf.summary.scalar("range_test/learning_rate", lr, step=i,
                              description=RANGE_TEST_DESCRIPTIONS["learning_rate"])
            if math.isfinite(sm):
                tf.summary.scalar("range_test/smoothed_loss", sm, step=i,
                                  description=RANGE_TEST_DESCRIPTIONS["smoothed_loss"])
        image = tf.io.decode_png(tf.io.read_file(str(png_path)), channels=4)
        tf.summary.image("range_test/loss_vs_rate", image[None], step=0,
                         description=RANGE_TEST_DESCRIPTIONS["loss_vs_rate"])
    writer.flush()


def check_range_test_args(start_lr: float, end_lr: float, num_steps: int, rule: str,
                          stop_factor: float) -> None:
    """Every argument of a range test, checked before anything is written."""
    if rule not in SUGGESTION_RULES:
        raise UserError(
            f"unknown suggestion rule {rule!r}. Expected one of: {', '.join(SUGGESTION_RULES)}"
        )
    if not (math.isfinite(stop_factor) and stop_factor > 1):
        raise UserError(f"--stop-factor must be > 1. Received: stop_factor={stop_factor}")
    try:
        RangeTestRamp(start_lr, end_lr, num_steps)
    except ValueError as error:
        raise UserError(f"range test: {error}") from None


def range_test_config(cfg, *, start_lr: float, end_lr: float, num_steps: int,
                      stop_factor: float, steps_per_epoch: int, run_name: str):
    """The run that is the range test: the `range_test` schedule over `num_steps`
    steps (whole epochs of at most `steps_per_epoch`), stopped by the divergence watch."""
    per_epoch = min(steps_per_epoch, num_steps)
    return cfg.replace(
        learning_rate=float(end_lr), schedule="range_test",
        schedule_args={"start_lr": float(start_lr)}, warmup_epochs=0.0,
        epochs=math.ceil(num_steps / per_epoch), steps_per_epoch=per_epoch,
        early_stopping=0, divergence_factor=float(stop_factor), monitor_every=0,
        resume=False, run_name=run_name)


def find_learning_rate(domain, cfg, *, bundle=None, out_dir: Path, start_lr: float = 1e-7,
                       end_lr: float = 10.0, num_steps: int = 100, rule: str = "valley",
                       stop_factor: float = 4.0, announce: bool = False) -> RangeTest:
    """The range test for a domain's model, built from `cfg` with its seed: one short
    run on the training path into the run directory `out_dir`, then its suggestions,
    plot, CSV and JSON written beside the run's own files.

    A finished range test in `out_dir` is read back instead of run again."""
    from common.training import run_training, steps_per_epoch_for

    check_range_test_args(start_lr, end_lr, num_steps, rule, stop_factor)
    if (out_dir / "range_test.json").is_file():
        return read_range_test(out_dir)
    bundle = bundle or domain.load_data(cfg)
    test_cfg = range_test_config(cfg, start_lr=start_lr, end_lr=end_lr, num_steps=num_steps,
                                 stop_factor=stop_factor,
                                 steps_per_epoch=steps_per_epoch_for(cfg, bundle),
                                 run_name=out_dir.name)
    # An interrupted range test (a sweep killed in it) continues where it stopped.
    test_cfg = test_cfg.replace(resume=(out_dir / "config.json").is_file())
    run = run_training(domain, test_cfg, bundle=bundle, run_dir=out_dir, kind="range_test",
                       announce=announce)
    recorder = run.recorder
    beta = smoothing_for(num_steps)
    result = RangeTest(
        learning_rates=list(recorder.learning_rates),
        losses=list(recorder.losses),
        smoothed=smooth(recorder.losses, beta).tolist(),
        suggestions=suggest(recorder.learning_rates, recorder.losses),
        rule=rule,
        stopped_early=run.summary["status"] == "diverged",
        wall_time_s=float(run.summary["wall_time_s"]),
    )
    title = (f"LR range test: {domain.name}, {bundle.description}; optimizer {cfg.optimizer}, "
             f"batch {cfg.batch_size}, seed {cfg.seed}, {len(result.losses)} steps")
    write_outputs(result, out_dir, title)
    return result


def read_range_test(out_dir: Path) -> RangeTest:
    """A finished range test read back from its range_test.json."""
    data = json.loads((out_dir / "range_test.json").read_text(encoding="utf-8"))
    nan = float("nan")
    result = RangeTest(
        learning_rates=data["learning_rates"],
        losses=[nan if v is None else v for v in data["losses"]],
        smoothed=[nan if v is None else v for v in data["smoothed"]],
        suggestions=data["suggestions"], rule=data["rule"],
        stopped_early=data["stopped_early"], wall_time_s=data["wall_time_s"], out_dir=out_dir,
        files=data.get("files", {}))
    return result


def resolve_learning_rate(domain, cfg, *, bundle=None, root: Path | None = None,
                          announce: bool = True):
    """Turn `--lr auto` into a number before training: a resumed run keeps the rate it
    chose; a new one runs the range test inside its own (new) run directory.

    Returns (cfg with a numeric rate, the range test's summary or None, the run
    directory made for the run or None)."""
    from common.runs import create_run_dir, default_run_name, existing_run_dir, read_json
    from common.training import plan_schedule, steps_per_epoch_for

    if cfg.learning_rate != "auto":
        return cfg, None, None
    root = root or Path(cfg.output) / domain.name
    if cfg.resume:
        run_dir = existing_run_dir(root, cfg.run_name)
        stored = read_json(run_dir / "config.json")
        if not isinstance(stored.get("learning_rate"), (int, float)):
            raise UserError(f"{run_dir}/config.json: no learning rate was chosen yet; drop "
                            "--resume to start the run again.")
        summary_path = run_dir / "summary.json"
        finder = read_json(summary_path).get("lr_find") if summary_path.exists() else None
        return cfg.replace(learning_rate=float(stored["learning_rate"])), finder, None
    bundle = bundle or domain.load_data(cfg)
    plan_schedule(cfg, 1e-3, steps_per_epoch_for(cfg, bundle))  # a bad schedule fails first
    run_dir = create_run_dir(root, cfg.run_name or default_run_name(
        cfg.optimizer, cfg.schedule, "auto"))
    result = find_learning_rate(domain, cfg, bundle=bundle, out_dir=run_dir / "lr_find")
    if announce:
        print(f"range test suggests learning rate {result.suggestion:.3g}", flush=True)
    return cfg.replace(learning_rate=result.suggestion), result.as_summary(), run_dir


def find_over_seeds(domain, cfg, seeds: list[int], *, bundle_for, out_dir: Path,
                    **options) -> dict[str, Any]:
    """The range test once per seed (`out_dir/seed-<s>/`), and how far the suggestion
    moves between them: each seed's suggestion, their median (the one to use), and the
    spread as the ratio of the largest to the smallest. `bundle_for(seed)` gives the
    data for a seed (the split and order depend on it). Writes range_tests.json and a
    plot of every seed's curve."""
    tests = {}
    for seed in seeds:
        seed_cfg = cfg.replace(seed=seed)
        tests[seed] = find_learning_rate(domain, seed_cfg, bundle=bundle_for(seed),
                                         out_dir=out_dir / f"seed-{seed}", **options)
    suggestions = {seed: test.suggestion for seed, test in tests.items()}
    values = sorted(suggestions.values())
    summary = {
        "seeds": list(seeds),
        "suggestions": {str(seed): rate for seed, rate in suggestions.items()},
        "median": float(np.median(values)),
        "min": values[0],
        "max": values[-1],
        "max_over_min": values[-1] / values[0],
        "log10_sd": float(np.std(np.log10(values), ddof=1)) if len(values) > 1 else None,
        "warnings": {str(seed): test.warning for seed, test in tests.items() if test.warning},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "range_tests.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    summary["plot"] = str(_plot_seeds(tests, summary, out_dir, domain.name))
    return summary


def _plot_seeds(tests: dict[int, RangeTest], summary: dict[str, Any], out_dir: Path,
                name: str) -> Path:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    lows, highs = [], []
    for index, (seed, test) in enumerate(tests.items()):
        axis.plot(test.learning_rates, test.smoothed, color=f"C{index}", lw=1.5,
                  label=f"seed {seed}: suggests {test.suggestion:.2g}")
        low, high = plot_range(test.smoothed)
        if low is not None:
            lows.append(low)
            highs.append(high)
    axis.axvline(summary["median"], color="k", ls="--", lw=1.2,
                 label=f"median {summary['median']:.2g} (x{summary['max_over_min']:.2g} "
                       "from lowest to highest)")
    if lows:
        axis.set_ylim(min(lows), max(highs))
    axis.set_xscale("log")
    axis.set_xlabel("learning rate (log scale)")
    axis.set_ylabel("training loss (smoothed)")
    axis.set_title(textwrap.fill(f"LR range test over {len(tests)} seeds: {name}", 80),
                   fontsize=9)
    axis.legend(fontsize=8)
    return save_figure(figure, out_dir / "range_tests.png", dpi=110)
