"""Sweep reports: what a sweep found, over its seeds, as figures and tables (rendered
by common.report_render as Markdown and a self-contained HTML page). The first line
states the data, model, budget and seeds; each figure has a caption of its own.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from common.domain import get_domain
from common.errors import UserError
from common.evidence import METHOD, compare_with_divergences, divergence_text, majority, spread
from common.figures import pyplot, save_figure
from common.report_render import Block, render_html, render_markdown
from common.runs import FINISHED_STATUSES, read_json

VERDICTS = ("too_low", "good", "too_high")


def read_steps(run_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, learning rates, batch losses) of a run's steps.csv (empty if missing)."""
    path = run_dir / "steps.csv"
    if not path.exists():
        return np.array([]), np.array([]), np.array([])
    with path.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    return (np.array([int(r["step"]) for r in rows]),
            np.array([float(r["learning_rate"]) for r in rows]),
            np.array([float(r["loss"]) for r in rows]))


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) < 1e-3 or abs(value) >= 1e4:
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def _metric(summary: dict[str, Any], key: str) -> float | None:
    value = summary.get(key)
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


def verdict_words(verdict: str | None) -> str:
    """One spelling everywhere: too_low -> 'too low'."""
    return (verdict or "?").replace("_", " ")


def _mean_sd(values: list[float], digits: int = 4) -> str:
    spread_ = spread(values)
    if spread_ is None:
        return "-"
    if spread_.n == 1:
        return f"{_fmt(spread_.mean, digits)} (1 seed)"
    return (f"{_fmt(spread_.mean, digits)} ± {spread_.sd:.2g} "
            f"[{_fmt(spread_.low, digits)}, {_fmt(spread_.high, digits)}]")


def _comparison_text(result: dict[str, Any] | None) -> str:
    if result is None:
        return "-"
    if result.get("diverged_seeds") or result.get("baseline_diverged_seeds"):
        return divergence_text(result, "baseline")
    low, high = result["interval"]
    if low is None:
        return f"{result['difference']:+.4f} (one seed: not judged)"
    return f"{result['difference']:+.4f} [{low:+.4f}, {high:+.4f}] {result['verdict']}"


RULES_IN_WORDS = (
    "How a run is judged: too high when its loss became NaN or diverged, blew up above its "
    "start, climbed back over half of its drop, oscillated from epoch to epoch, or rose over "
    "the run; too low when the loss fell by under 5% (or by less than its own noise), the "
    "rate sat 30x or more below the range test's suggestion, or each step moved the weights "
    "by under 1e-5 of their size; good otherwise. Flags add what the verdict does not say: "
    "overfitting (validation loss climbing while the training loss falls) and under-trained "
    "(still improving at its last epoch).")


class SweepReport:
    def __init__(self, sweep_dir: Path):
        self.dir = sweep_dir
        self.state = read_json(sweep_dir / "sweep.json")
        self.objective = self.state["objective"]
        self.direction = self.state.get("direction", "max")
        self.seeds = self.state.get("seeds", [self.state["base_config"]["seed"]])
        # point -> {seed: summary}; a point's folder holds one run per seed
        self.points: dict[str, dict[int, dict[str, Any]]] = {}
        for path in sorted(sweep_dir.glob("*/seed-*/summary.json")):
            summary = read_json(path)
            self.points.setdefault(path.parent.parent.name, {})[int(summary["seed"])] = summary
        self.plots = sweep_dir / "plots"
        self.plots.mkdir(exist_ok=True)
        base = self.state["base_config"]
        first = next((s for runs in self.points.values() for s in runs.values()), {})
        stopping = (f"early stopping after {base['early_stopping']} epochs without progress"
                    if base.get("early_stopping") else "no early stopping: every run has its "
                    "whole budget, so a schedule is compared over its full horizon")
        self.caption = (
            f"Data: {self.state.get('data', '?')}. Model: {self.state['domain']} default "
            f"({_model_words(self.state['domain'], base)}). Budget: {base['epochs']} epochs x "
            f"{first.get('steps_per_epoch', '?')} steps, batch {base['batch_size']}, optimizer "
            f"{base['optimizer']}; {stopping}. Seeds: {', '.join(map(str, self.seeds))}."
        )

    # -- groups --------------------------------------------------------------
    def rate_points(self) -> list[tuple[float, dict[int, dict[str, Any]]]]:
        points = [(float(next(iter(runs.values()))["learning_rate"]), runs)
                  for name, runs in self.points.items() if name.startswith("rate-")]
        return sorted(points, key=lambda item: item[0])

    def rate_runs(self) -> list[dict[str, Any]]:
        """Every rate run of every seed, by rate."""
        return [s for _, runs in self.rate_points() for s in runs.values()]

    def sharpness_blocks(self) -> list[Block]:
        """The probe's readings per rate (first seed), when the probe ran in the grid."""
        from common.sharpness_report import plot_sweep_sharpness

        seed = self.seeds[0]
        runs = [runs[seed] for _, runs in self.rate_points() if seed in runs]
        dirs = [Path(s["run_dir"]) for s in runs if s.get("run_dir")]
        plot = plot_sweep_sharpness(dirs, self.plots / "sharpness.png")
        if plot is None:
            return []
        lines = [line for line in map(_sharpness_line, runs) if line]
        return [Block("h2", "Sharpness against the stability threshold"),
                Block("image", plot, f"Top Hessian eigenvalue of the training loss per rate "
                      f"(preconditioned for the Adam family), seed {seed}, with each rate's "
                      "threshold (2/lr, (2+2b)/lr with momentum, 38/lr for Adam at beta_1 0.9)."),
                Block("text", "; ".join(lines) + ".")]

    def _best_point(self) -> dict[int, dict[str, Any]]:
        return self.points.get(self.state.get("best_rate_run", ""), {})

    def group(self, prefix: str, labels: list[str]) -> list[tuple[str, dict[int, dict]]]:
        out = []
        for label in labels:
            runs = self.points.get(f"{prefix}-{label}")
            reused = (prefix == "schedule" and label == "constant") or (
                prefix == "optimizer" and label == self.state["base_config"]["optimizer"])
            if runs is None and reused:
                runs = self._best_point()
            if runs:
                out.append((label, runs))
        return out

    def _values(self, runs: dict[int, dict[str, Any]], key: str) -> dict[int, float]:
        return {seed: v for seed, s in runs.items() if (v := _metric(s, key)) is not None
                and s.get("status") == "completed"}

    def compare(self, runs, baseline) -> dict[str, Any] | None:
        """The paired comparison (common.evidence), a divergence counted as a loss."""
        def diverged(points):
            return [seed for seed, s in points.items() if s.get("status") == "diverged"]

        return compare_with_divergences(self._values(runs, self.objective),
                                        self._values(baseline, self.objective),
                                        entry_diverged=diverged(runs),
                                        baseline_diverged=diverged(baseline),
                                        direction=self.direction)

    # -- figures -------------------------------------------------------------
    def u_curve(self) -> Path:
        plt = pyplot()
        points = self.rate_points()
        figure, axis = plt.subplots(figsize=(7, 4.2))
        rates, means, lows, highs = [], [], [], []
        for rate, runs in points:
            values = list(self._values(runs, self.objective).values())
            for value in values:
                axis.plot(rate, value, "o", color="C0", alpha=0.3, ms=4)
            if values:
                rates.append(rate)
                means.append(float(np.mean(values)))
                lows.append(min(values))
                highs.append(max(values))
        if rates:
            axis.plot(rates, means, "o-", color="C0", label=f"mean over seeds (n={len(self.seeds)})")
            if len(self.seeds) > 1:
                axis.fill_between(rates, lows, highs, color="C0", alpha=0.15,
                                  label="min to max over seeds")
        diverged = [(rate, sum(s["status"] == "diverged" for s in runs.values()))
                    for rate, runs in points]
        diverged = [(r, n) for r, n in diverged if n]
        if diverged:
            low = axis.get_ylim()[0] if rates else 0.0
            axis.plot([r for r, _ in diverged], [low] * len(diverged), "x", color="C3", ms=10,
                      mew=2, label="diverged (seeds)")
        colors = {"too_low": "C1", "good": "C2", "too_high": "C3"}
        for rate, runs in points:
            verdict, _, _ = majority([s.get("diagnosis", {}).get("verdict", "?")
                                      for s in runs.values()])
            if verdict in colors:
                axis.axvspan(rate / 1.3, rate * 1.3, color=colors[verdict], alpha=0.12, lw=0)
        suggestion = self.state.get("range_test", {}).get("suggestion")
        if suggestion:
            axis.axvline(suggestion, color="C4", ls="--", label=f"range test {suggestion:.2g}")
        axis.set_xscale("log")
        axis.set_xlabel("learning rate (log scale)")
        axis.set_ylabel(f"final {self.objective}")
        axis.set_title("shading: majority verdict (orange too low, green good, red too high)",
                       fontsize=9)
        axis.legend(fontsize=8)
        return self._save(figure, "u_curve.png")

    def loss_curves(self) -> Path:
        plt = pyplot()
        from common.diagnosis import centred_average

        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        cmap = plt.get_cmap("viridis")
        points = self.rate_points()
        healthy: list[float] = []
        seed = self.seeds[0]
        for i, (rate, runs) in enumerate(points):
            s = runs.get(seed) or next(iter(runs.values()))
            color = cmap(i / max(1, len(points) - 1))
            diverged = s["status"] == "diverged"
            label = f"lr {rate:.2g}{' (diverged)' if diverged else ''}"
            steps, _, losses = read_steps(Path(s["run_dir"]))
            keep = np.isfinite(losses)
            if keep.sum():
                curve = centred_average(losses[keep], 11)
                left.plot(steps[keep], curve, color=color, label=label, lw=1.4,
                          ls="--" if diverged else "-")
                if not diverged:
                    healthy.extend(curve.tolist())
            val = s.get("history", {}).get("val_loss", [])
            if val:
                right.plot(range(1, len(val) + 1), val, "o-", color=color, label=label, lw=1.4,
                           ms=3)
                if not diverged:
                    healthy.extend(v for v in val if math.isfinite(v))
        for axis, title in ((left, "training loss (moving average of 11 steps)"),
                            (right, "validation loss per epoch")):
            axis.set_title(title, fontsize=10)
            axis.set_yscale("log")
            axis.set_ylabel("loss (log scale)")
            positive = [v for v in healthy if v > 0]
            if positive:  # frame the healthy runs; a diverged one leaves the frame
                axis.set_ylim(min(positive) / 1.5, max(positive) * 1.5)
            axis.legend(fontsize=7)
        left.set_xlabel("step")
        right.set_xlabel("epoch")
        right.xaxis.get_major_locator().set_params(integer=True)
        return self._save(figure, "loss_curves.png")

    def comparison(self, prefix: str, labels: list[str], name: str) -> Path | None:
        runs = self.group(prefix, labels)
        if not runs:
            return None
        plt = pyplot()
        panels = 2 if prefix == "schedule" else 1
        figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2))
        axes = np.atleast_1d(axes)
        styles = ["-", "--", "-.", ":"]
        for index, (label, by_seed) in enumerate(runs):
            histories = [s.get("history", {}).get(self.objective, []) for s in by_seed.values()
                         if s.get("status") == "completed"]
            histories = [h for h in histories if h]
            if histories:
                length = min(map(len, histories))
                mean = np.mean([h[:length] for h in histories], axis=0)
                axes[0].plot(range(1, length + 1), mean, marker="o", ls=styles[index % 4],
                             label=label, ms=3)
            if prefix == "schedule":
                first = by_seed.get(self.seeds[0]) or next(iter(by_seed.values()))
                steps, rates, _ = read_steps(Path(first["run_dir"]))
                if len(rates):
                    axes[1].plot(steps, rates, label=label, lw=1.6, ls=styles[index % 4])
        axes[0].set_title(f"{self.objective} per epoch, mean over seeds", fontsize=10)
        axes[0].set_xlabel("epoch")
        axes[0].set_ylabel(self.objective)
        axes[0].xaxis.get_major_locator().set_params(integer=True)
        axes[0].legend(fontsize=7)
        if prefix == "schedule":
            axes[1].set_title("learning rate per step", fontsize=10)
            axes[1].set_xlabel("step")
            axes[1].set_ylabel("learning rate")
            axes[1].legend(fontsize=7)
        return self._save(figure, name)

    def _save(self, figure, name: str) -> Path:
        return save_figure(figure, self.plots / name)

    # -- tables ----------------------------------------------------------------
    def header(self, first: str, baseline: str) -> list[str]:
        test = "test_" + self.objective.removeprefix("val_")
        return [first, "seeds", "verdict (majority)", f"{self.objective} mean ± sd [min, max]",
                f"{test} mean", "epochs run", f"vs {baseline}: difference [95% interval]",
                "wall s (mean)"]

    def row(self, label: str, runs: dict[int, dict[str, Any]], baseline) -> list[str]:
        summaries = list(runs.values())
        verdict, count, total = majority([s.get("diagnosis", {}).get("verdict", "?")
                                          for s in summaries])
        flags = sorted({f for s in summaries for f in s.get("diagnosis", {}).get("flags", [])})
        diverged = sum(s["status"] == "diverged" for s in summaries)
        test = "test_" + self.objective.removeprefix("val_")
        epochs = sorted({int(s.get("epochs_run", 0)) for s in summaries})
        shown = f"{verdict_words(verdict)} {count}/{total}" + (
            f" ({', '.join(verdict_words(f) for f in flags)})" if flags else "")
        objective = _mean_sd(list(self._values(runs, self.objective).values()))
        if diverged:
            shown_div = f"diverged on {diverged} of {total}"
            objective = shown_div if objective == "-" else f"{objective}; {shown_div}"
        walls = [float(s["wall_time_s"]) for s in summaries if s.get("wall_time_s")]
        return [label, str(total), shown, objective,
                _mean_sd(list(self._values(runs, test).values())),
                "/".join(map(str, epochs)) or "-",
                "baseline" if runs is baseline else _comparison_text(self.compare(runs, baseline)),
                _fmt(float(np.mean(walls)), 3) if walls else "-"]

    def class_table(self) -> list[list[str]]:
        """Seed 003's comparison table, measured: per verdict class, the median over its
        runs (every seed counted); diverged runs are counted, not averaged in."""
        by_class: dict[str, list[dict[str, Any]]] = {v: [] for v in VERDICTS}
        for s in self.rate_runs():
            verdict = s.get("diagnosis", {}).get("verdict")
            if verdict in by_class:
                by_class[verdict].append(s)

        def median(runs, getter):
            values = [getter(s) for s in runs if s.get("status") == "completed"]
            values = [v for v in values if v is not None and math.isfinite(v)]
            return f"{_fmt(float(np.median(values)), 3)} (n={len(values)})" if values else "-"

        def rates(runs):
            return ", ".join(sorted({f"{float(s['learning_rate']):.2g}" for s in runs},
                                    key=float)) or "-"

        diagnosis = lambda key: lambda s: s.get("diagnosis", {}).get(key)  # noqa: E731
        return [
            ["rates with runs in class"] + [rates(by_class[v]) for v in VERDICTS],
            ["median convergence (steps to 90% of the loss drop)"] +
            [median(by_class[v], diagnosis("convergence_steps")) for v in VERDICTS],
            ["median stability (relative batch-loss scatter)"] +
            [median(by_class[v], diagnosis("stability")) for v in VERDICTS],
            ["median overshoot (rebound above the best loss)"] +
            [median(by_class[v], diagnosis("overshoot")) for v in VERDICTS],
            [f"median final {self.objective}"] +
            [median(by_class[v], lambda s: _metric(s, self.objective)) for v in VERDICTS],
            ["diverged runs (not in the medians)"] +
            [str(sum(s["status"] == "diverged" for s in by_class[v])) for v in VERDICTS],
        ]

    def verdict_text(self, prefix: str, runs: list[tuple[str, dict]], baseline_label: str,
                     baseline) -> str:
        """Names a winner only when it is better beyond noise."""
        if len(self.seeds) < 2:
            return (f"One seed: the {prefix}s' differences are shown, not judged. A change of "
                    "seed moves a run by about as much as many of these differences; rerun "
                    "with --seeds 3 to measure the noise and tell them apart.")
        judged = [(label, self.compare(r, baseline)) for label, r in runs if r is not baseline]
        better = [(label, c) for label, c in judged if c and c["verdict"] == "better"
                  and c["difference"] is not None and c["interval"][0] is not None]
        worse = [label for label, c in judged if c and c["verdict"] == "worse"]
        if not better:
            text = (f"No {prefix} beats {baseline_label} beyond noise at this budget: they tie "
                    f"(n={len(self.seeds)} seeds, paired intervals).")
        else:
            best_label, best = max(better, key=lambda item: item[1]["difference"]
                                   * (1 if self.direction == "max" else -1))
            low, high = best["interval"]
            text = (f"{best_label} is better than {baseline_label} beyond noise: "
                    f"{best['difference']:+.4f} [{low:+.4f}, {high:+.4f}] over "
                    f"{best['n']} seeds")
            others = [label for label, _ in better if label != best_label]
            text += (f"; also better: {', '.join(others)}." if others else ".")
        if worse:
            text += f" Worse beyond noise: {', '.join(worse)}."
        return text

    # -- assembly --------------------------------------------------------------
    def blocks(self) -> list[Block]:
        domain = self.state["domain"]
        rt = self.state.get("range_test", {})
        best = self.state.get("best_rate")
        best_point = self._best_point()
        base_optimizer = self.state["base_config"]["optimizer"]
        rate_rows = [self.row(f"{rate:.3g}", runs, best_point)
                     for rate, runs in self.rate_points()]
        blocks = [
            Block("h1", f"Learning-rate sweep: {domain}"),
            Block("text", self.caption),
            Block("text", f"Best constant rate (best mean {self.objective} over seeds): "
                          f"{_fmt(best)}. Range test suggestion ({rt.get('rule', '?')}): "
                          f"{_fmt(rt.get('suggestion'))}"
                          + (f", {max(best, rt['suggestion']) / min(best, rt['suggestion']):.1f}x "
                             "from the best rate." if best and rt.get("suggestion") else ".")
                          + (f" Range test warning: {rt['warning']}" if rt.get("warning") else "")),
            Block("text", f"Differences: {METHOD}; 'within noise' when the interval holds 0. "
                          "Spreads are the sample sd and [min, max] over seeds."),
            Block("h2", "Final metric against rate (the U-curve)"),
            Block("image", self.u_curve(), f"Final {self.objective} against the rate: the mean "
                  "over seeds, each seed faintly, the band from the lowest to the highest seed."),
            Block("table", [self.header("rate", "the best rate")] + rate_rows),
            Block("h2", "Loss curves per rate"),
            Block("image", self.loss_curves(), f"Training and validation loss per rate, seed "
                  f"{self.seeds[0]}; dashed: diverged (outside the frame)."),
            Block("h2", "Too low, good, too high: the comparison table, measured"),
            Block("table", [["", "too low", "good", "too high"]] + self.class_table()),
        ]
        blocks += self.sharpness_blocks()
        schedules = self.group("schedule", self.state["schedules"])
        constant = dict(schedules).get("constant", best_point)
        if schedules:
            blocks += [
                Block("h2", f"Schedules at the best rate ({_fmt(best)})"),
                Block("text", self.verdict_text("schedule", schedules, "the constant rate",
                                                constant)
                      + " The constant entry is the grid's run at the best rate."),
                Block("image", self.comparison("schedule", self.state["schedules"],
                                               "schedules.png"),
                      f"{self.objective} per epoch (mean over seeds) and the rate per step of "
                      "each schedule."),
                Block("table", [self.header("schedule", "constant")]
                      + [self.row(label, runs, constant) for label, runs in schedules])]
        optimizers = self.group("optimizer", self.state["optimizers"])
        default = dict(optimizers).get(base_optimizer, best_point)
        if optimizers:
            blocks += [
                Block("h2", f"Optimizers at the best rate ({_fmt(best)})"),
                Block("text", self.verdict_text("optimizer", optimizers, base_optimizer,
                                                default)
                      + f" The {base_optimizer} entry is the grid's run at the best rate."),
                Block("image", self.comparison("optimizer", self.state["optimizers"],
                                               "optimizers.png"),
                      f"{self.objective} per epoch of each optimizer, mean over seeds."),
                Block("table", [self.header("optimizer", base_optimizer)]
                      + [self.row(label, runs, default) for label, runs in optimizers])]
        blocks.append(Block("text", RULES_IN_WORDS))
        return blocks


def _sharpness_line(summary: dict[str, Any]) -> str:
    from common.diagnosis import SHARPNESS_OVER_FACTOR, sharpness_figures

    figures = sharpness_figures((summary.get("sharpness") or {}).get("records"))
    if figures is None:
        return ""
    return (f"{_fmt(summary['learning_rate'])}: {figures['share_over']:.0%} of "
            f"{figures['readings']} probes over {SHARPNESS_OVER_FACTOR:g}x the threshold, "
            f"{figures['settled_ratio']:.2g}x at the end (median of the last third), "
            f"at most {figures['max_ratio']:.2g}x")


def _model_words(domain_name: str, base: dict[str, Any]) -> str:
    """The domain's one-line model description (`Domain.describe_model`)."""
    try:
        domain = get_domain(domain_name)
    except UserError:  # a sweep of a domain no longer registered
        return "see config.json"
    return domain.describe_model(base) if domain.describe_model else "see config.json"


def rediagnose_sweep(sweep_dir: Path) -> int:
    """Re-run the diagnosis of every finished run of a sweep from what it recorded
    (steps.csv and the epoch history), so a sweep made under older rules reads with the
    current ones. Returns the number of runs updated."""
    from common.diagnosis import diagnose_run
    from common.runs import write_json

    range_test = read_json(sweep_dir / "sweep.json").get("range_test")
    updated = 0
    for path in sorted([*sweep_dir.glob("*/summary.json"), *sweep_dir.glob("*/seed-*/summary.json")]):
        summary = read_json(path)
        if summary.get("status") not in FINISHED_STATUSES or summary.get("kind") == "range_test":
            continue
        if range_test and "lr_find" not in summary:  # runs of sweeps made before runs kept it
            summary["lr_find"] = range_test
        _, _, losses = read_steps(path.parent)
        old = summary.get("diagnosis", {})
        summary["diagnosis"] = diagnose_run(summary, losses.tolist())
        summary["diagnosis"]["previous_verdict"] = old.get("verdict")
        write_json(path, summary)
        updated += 1
    return updated


def write_sweep_report(sweep_dir: Path) -> tuple[Path, Path]:
    """Write report.md and report.html into the sweep directory."""
    report = SweepReport(sweep_dir)
    blocks = report.blocks()
    md = sweep_dir / "report.md"
    md.write_text(render_markdown(blocks, sweep_dir), encoding="utf-8")
    page = sweep_dir / "report.html"
    page.write_text(render_html(blocks, f"lr-suite sweep: {report.state['domain']}"), encoding="utf-8")
    return md, page


def _rate_verdicts(report: SweepReport) -> list[tuple[float, list[str]]]:
    """Each swept rate with its seeds' verdicts, by rate."""
    return [(rate, [s.get("diagnosis", {}).get("verdict", "?") for s in runs.values()])
            for rate, runs in report.rate_points()]


def good_band_cells(report: SweepReport) -> tuple[str, str]:
    """(the rates judged good by majority over seeds, with counts; the uncertain edges:
    rates where the seeds split on `good`)."""
    good, uncertain = [], []
    for rate, verdicts in _rate_verdicts(report):
        verdict, count, total = majority(verdicts)
        goods = verdicts.count("good")
        if verdict == "good":
            good.append(f"{_fmt(rate)} ({count}/{total})")
        if 0 < goods < total:
            other = verdict if verdict != "good" else majority(
                [v for v in verdicts if v != "good"])[0]
            uncertain.append(f"{_fmt(rate)}: good {goods}/{total}, {verdict_words(other)} "
                             f"{total - goods}/{total}")
    seeds = len(report.seeds)
    edges = "; ".join(uncertain) if uncertain else (
        "one seed: no spread" if seeds < 2 else f"none: all {seeds} seeds agree")
    return (", ".join(good) or "none"), edges


def per_seed_best_rates(report: SweepReport) -> dict[int, float]:
    """{seed: the rate with that seed's best objective}, over completed rate runs."""
    best: dict[int, tuple[float, float]] = {}
    sign = 1.0 if report.direction == "max" else -1.0
    for rate, runs in report.rate_points():
        for seed, value in report._values(runs, report.objective).items():
            if seed not in best or sign * value > sign * best[seed][1]:
                best[seed] = (rate, value)
    return {seed: rate for seed, (rate, _) in sorted(best.items())}


def best_rate_cell(report: SweepReport) -> str:
    best = _fmt(report.state.get("best_rate"))
    per_seed = per_seed_best_rates(report)
    if len(report.seeds) < 2 or len(per_seed) < 2:
        return f"{best} (one seed: no spread)"
    rates = sorted(per_seed.values())
    moved = "same on every seed" if rates[0] == rates[-1] else (
        f"per seed {_fmt(rates[0])} to {_fmt(rates[-1])}")
    return f"{best} ({moved}, n={len(per_seed)})"


OVERVIEW_COLUMNS = (
    "Columns: good rates: the rates whose majority verdict over seeds is good, with the count "
    "(good 2/3: two of three seeds); uncertain edges: rates where the seeds split on good, "
    "so the band's edge there is not settled; best rate: the rate with the best mean "
    "objective, and how far each seed's own best rate moved. The second table gives the "
    "objective at the best rate (mean ± sd [min, max] over seeds) and the range test's "
    "suggestion.")


def write_overview(output: Path) -> tuple[Path, Path] | None:
    """`make report`: the latest sweep of each domain on one page: its good band with the
    band's uncertainty over seeds, then each domain's U-curve."""
    latest = []
    for domain_dir in sorted(p for p in output.iterdir() if p.is_dir()) if output.exists() else []:
        sweeps = [p for p in (domain_dir / "sweeps").glob("*") if (p / "sweep.json").exists()
                  and "best_rate" in read_json(p / "sweep.json")]
        if sweeps:
            latest.append(max(sweeps, key=lambda p: (p / "sweep.json").stat().st_mtime))
    if not latest:
        return None
    band_rows = [["domain", "good rates (majority)", "uncertain edges", "best rate", "seeds"]]
    detail_rows = [["domain", "objective at the best rate", "range test"]]
    figures = []
    for sweep_dir in latest:
        report = SweepReport(sweep_dir)
        domain = report.state["domain"]
        good, edges = good_band_cells(report)
        band_rows.append([domain, good, edges, best_rate_cell(report), str(len(report.seeds))])
        detail_rows.append([domain, f"{report.objective} " + _mean_sd(list(report._values(
            report._best_point(), report.objective).values())),
            _fmt(report.state.get("range_test", {}).get("suggestion"))])
        figures += [Block("h2", domain),
                    Block("text", f"Data: {report.state.get('data', '?')}. Sweep: {sweep_dir}."),
                    Block("image", report.u_curve(), f"{domain}: final {report.objective} "
                          "against rate, mean and band over seeds.")]
    blocks = [Block("h1", "Learning-rate sweeps across domains"),
              Block("text", "The latest finished sweep of each domain: where the good band of "
                            "constant rates lies, how sure the seeds are of it, and how far the "
                            "range test was from the best rate."),
              Block("text", OVERVIEW_COLUMNS),
              Block("table", band_rows), Block("table", detail_rows), *figures]
    md = output / "report.md"
    md.write_text(render_markdown(blocks, output), encoding="utf-8")
    page = output / "report.html"
    page.write_text(render_html(blocks, "lr-suite: learning rates across domains"), encoding="utf-8")
    return md, page
