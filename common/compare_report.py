"""The report of `lrsuite compare`: a table of every point against the tuned rate (mean ±
sd [min, max] over seeds, the paired difference and its verdict, seconds per step
relative to the default, epochs run), validation-loss curves, the effective rate per
step, and a verdict in words. compare.json holds the table's numbers for scripts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from common.compare import PLAN_FILE, seconds_per_step
from common.evidence import METHOD, compare_with_divergences, divergence_text, spread
from common.figures import pyplot, save_figure
from common.report_render import Block, render_html, render_markdown
from common.reporting import _fmt, _model_words, read_steps
from common.runs import read_json, write_json

BASELINE = "tuned"
TIME_BASELINE = "default"
SAME_RUNS = "same runs as tuned"
ONE_SEED = ("One seed: the differences against tuned are shown, not judged. A change of seed "
            "moves a run by about as much as many of these differences; rerun with --seeds 3 "
            "to measure the noise and tell them apart.")


def _objective(summary: dict[str, Any], key: str) -> float | None:
    value = summary.get(key)
    if summary.get("status") != "completed" or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


class CompareReport:
    def __init__(self, compare_dir: Path):
        self.dir = Path(compare_dir)
        self.plan = read_json(self.dir / PLAN_FILE)
        self.objective = self.plan["objective"]
        self.direction = self.plan["direction"]
        self.seeds = list(self.plan["seeds"])
        self.points = self.plan["points"]
        self.runs: dict[str, dict[int, dict[str, Any]]] = {}
        for point in self.points:
            source = point["same_as"] or point["name"]
            for seed in self.seeds:
                path = self.dir / source / f"seed-{seed}" / "summary.json"
                if path.exists():
                    self.runs.setdefault(point["name"], {})[seed] = read_json(path)
        self.plots = self.dir / "plots"
        self.plots.mkdir(exist_ok=True)

    # -- numbers -------------------------------------------------------------------------
    def values(self, name: str) -> dict[int, float]:
        return {seed: v for seed, s in self.runs.get(name, {}).items()
                if (v := _objective(s, self.objective)) is not None}

    def diverged(self, name: str) -> list[int]:
        return sorted(seed for seed, s in self.runs.get(name, {}).items()
                      if s.get("status") == "diverged")

    def versus_tuned(self, name: str, values: dict[int, float]) -> dict[str, Any] | None:
        return compare_with_divergences(values, self.values(BASELINE),
                                        entry_diverged=self.diverged(name),
                                        baseline_diverged=self.diverged(BASELINE),
                                        direction=self.direction)

    def step_seconds(self, name: str) -> tuple[float | None, list[str]]:
        """(mean over seeds of each run's median seconds per step, the sources used)."""
        found = [seconds_per_step(Path(s["run_dir"]), s)
                 for s in self.runs.get(name, {}).values() if s.get("run_dir")]
        seconds = [v for v, _ in found if v is not None]
        return (float(np.mean(seconds)) if seconds else None), sorted({w for _, w in found})

    def entry(self, point: dict[str, Any]) -> dict[str, Any]:
        """One row's numbers, as compare.json holds them."""
        name = point["name"]
        runs = self.runs.get(name, {})
        values = self.values(name)
        over = spread(list(values.values()))
        seconds, sources = self.step_seconds(name)
        base_seconds, _ = self.step_seconds(TIME_BASELINE)
        versus: Any = None
        if name == "default" and self._tuned_is_default():
            versus = SAME_RUNS
        elif name != BASELINE:
            versus = self.versus_tuned(name, values)
        return {
            "point": name, "setup": point["setup"], "same_as": point["same_as"],
            "note": point["reason"],
            "optimizer": next(iter(runs.values()), {}).get("optimizer"),
            "schedule": next(iter(runs.values()), {}).get("schedule"),
            "learning_rate": next(iter(runs.values()), {}).get("learning_rate"),
            "values": {str(seed): v for seed, v in sorted(values.items())},
            "objective": over.as_dict() if over else None,
            "statuses": {str(seed): s.get("status") for seed, s in sorted(runs.items())},
            "vs_tuned": "baseline" if name == BASELINE else versus,
            "seconds_per_step": seconds, "seconds_per_step_source": sources,
            "step_time_vs_default": (seconds / base_seconds
                                     if seconds is not None and base_seconds else None),
            "epochs_run": {str(seed): int(s.get("epochs_run", 0)) for seed, s in sorted(runs.items())},
        }

    # -- words -----------------------------------------------------------------------------
    def cells(self, entry: dict[str, Any]) -> list[str]:
        over = entry["objective"]
        failed = [s for s in entry["statuses"].values() if s != "completed"]
        if over is None:
            shown = "-"
        elif over["n"] == 1:
            shown = f"{_fmt(over['mean'])} n=1"
        else:
            shown = (f"{_fmt(over['mean'])} ± {over['sd']:.2g} [{_fmt(over['min'])}, "
                     f"{_fmt(over['max'])}] n={over['n']}")
        if failed:
            shown += f" ({', '.join(sorted(set(failed)))} {len(failed)}/{len(entry['statuses'])})"
        versus = entry["vs_tuned"]
        if isinstance(versus, str):
            versus_text = versus
        elif versus is None:
            versus_text = "-"
        elif versus.get("diverged_seeds") or versus.get("baseline_diverged_seeds"):
            versus_text = divergence_text(versus, BASELINE)
        elif versus["interval"][0] is None:
            versus_text = f"{versus['difference']:+.4g} (one seed: not judged)"
        else:
            low, high = versus["interval"]
            versus_text = f"{versus['difference']:+.4g} [{low:+.4g}, {high:+.4g}] {versus['verdict']}"
        seconds = entry["seconds_per_step"]
        ratio = entry["step_time_vs_default"]
        time_text = "-" if seconds is None else f"{seconds * 1000:.3g} ms ({ratio:.2f}x)" \
            if ratio is not None else f"{seconds * 1000:.3g} ms"
        epochs = sorted(set(entry["epochs_run"].values()))
        return [entry["point"], entry["setup"] or entry["note"] or "-", shown, versus_text, time_text,
                ", ".join(map(str, epochs)) or "-"]

    def _tuned_is_default(self) -> bool:
        return any(p["name"] == BASELINE and p["same_as"] == "default" for p in self.points)

    def verdict_text(self, entries: list[dict[str, Any]]) -> str:
        """Which methods are within noise of tuned, which are worse (or better)."""
        if len(self.seeds) < 2:
            return ONE_SEED
        if not self.values(BASELINE):
            return ("Nothing judged: tuned has no finished value (it diverged or failed on "
                    "every seed), so no point has a baseline to be compared with.")
        groups: dict[str, list[str]] = {"within noise": [], "worse": [], "better": []}
        missing = []
        for entry in entries:
            if entry["point"] in (BASELINE, "default") and self._tuned_is_default():
                continue
            if entry["point"] == BASELINE:
                continue
            versus = entry["vs_tuned"]
            if not isinstance(versus, dict):
                missing.append(entry["point"])
            elif versus["verdict"] in groups:
                groups[versus["verdict"]].append(entry["point"])
        tuned = "tuned (= default)" if self._tuned_is_default() else "tuned"
        parts = [f"Within noise of {tuned}: {', '.join(groups['within noise']) or 'none'}.",
                 f"Worse than {tuned} beyond noise: {', '.join(groups['worse']) or 'none'}."]
        if groups["better"]:
            parts.append(f"Better than {tuned} beyond noise: {', '.join(groups['better'])}.")
        if missing:
            parts.append(f"No value to compare (diverged or failed on every seed): "
                         f"{', '.join(missing)}.")
        return " ".join(parts) + f" (n={len(self.seeds)} seeds, paired intervals.)"

    # -- figures ---------------------------------------------------------------------------
    def _trained(self) -> list[str]:
        return [p["name"] for p in self.points if not p["same_as"]]

    def loss_plot(self) -> Path:
        plt = pyplot()
        figure, axis = plt.subplots(figsize=(7, 4.2))
        key, drawn = "val_loss", []
        for index, name in enumerate(self._trained()):
            curves = [s.get("history", {}).get(key) or s.get("history", {}).get("loss", [])
                      for s in self.runs.get(name, {}).values()]
            curves = [c for c in curves if c]
            if not curves:
                continue
            length = min(map(len, curves))
            mean = np.mean([c[:length] for c in curves], axis=0)
            drawn += [v for v in mean if math.isfinite(v) and v > 0]
            axis.plot(range(1, length + 1), mean, marker="o", ms=3, label=name,
                      color=f"C{index}", ls=["-", "--", "-.", ":"][index % 4])
        wide = bool(drawn) and max(drawn) > 3 * min(drawn)  # a log axis only helps then
        axis.set_yscale("log" if wide else "linear")
        axis.set_xlabel("epoch")
        axis.set_ylabel("validation loss" + (" (log scale)" if wide else ""))
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.legend(fontsize=7)
        return self._save(figure, "val_loss.png")

    def rate_plot(self) -> Path:
        plt = pyplot()
        figure, axis = plt.subplots(figsize=(7, 4.2))
        seed = self.seeds[0]
        for index, name in enumerate(self._trained()):
            summary = self.runs.get(name, {}).get(seed)
            if not summary:
                continue
            steps, rates, _ = read_steps(Path(summary["run_dir"]))
            keep = np.isfinite(rates) & (rates > 0)
            if keep.any():
                axis.plot(steps[keep], rates[keep], label=name, lw=1.5, color=f"C{index}",
                          ls=["-", "--", "-.", ":"][index % 4])
        axis.set_yscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel("effective learning rate (log scale)")
        axis.legend(fontsize=7)
        return self._save(figure, "effective_rate.png")

    def _save(self, figure, name: str) -> Path:
        return save_figure(figure, self.plots / name)

    # -- assembly --------------------------------------------------------------------------
    def blocks(self, entries: list[dict[str, Any]], verdict: str) -> list[Block]:
        base = self.plan["base_config"]
        first = next((s for runs in self.runs.values() for s in runs.values()), {})
        default_optimizer = base["optimizer"]
        caption = (f"Data: {first.get('data', '?')}. Model: {self.plan['domain']} default "
                   f"({_model_words(self.plan['domain'], base)}). Budget, the same for every "
                   f"point: {base['epochs']} epochs x {first.get('steps_per_epoch', '?')} "
                   f"steps, batch {base['batch_size']}; no early stopping. Seeds: "
                   f"{', '.join(map(str, self.seeds))}.")
        tuned = next(p for p in self.points if p["name"] == BASELINE)
        tuned_line = tuned["reason"] or f"Tuned: {tuned['setup']}."
        header = ["point", "setup", f"{self.objective} mean ± sd [min, max] n",
                  "vs tuned: difference [95% interval] verdict",
                  f"seconds per step (x default, {default_optimizer})", "epochs run"]
        return [
            Block("h1", f"Rate-free methods against the tuned rate: {self.plan['domain']}"),
            Block("text", caption),
            Block("text", tuned_line),
            Block("text", verdict),
            Block("table", [header] + [self.cells(e) for e in entries]),
            Block("text", f"Differences: {METHOD}; 'within noise' when the interval holds 0. "
                          "Seconds per step: the median over a run's steps (the first step "
                          "of each fit, which traces the step, left out; validation not "
                          "included), mean over seeds, and its ratio to the default's."),
            Block("h2", "Validation loss per point"),
            Block("image", self.loss_plot(), "Validation loss per epoch, mean over seeds."),
            Block("h2", "Effective rate per step"),
            Block("image", self.rate_plot(), f"The rate each point applied at every step "
                  f"(steps.csv, seed {self.seeds[0]}): d x lr for Prodigy and D-Adaptation, "
                  "the DoG step, the schedule's rate otherwise."),
        ]


def write_compare_report(compare_dir: Path) -> tuple[Path, Path]:
    """Write compare.json, report.md and report.html into the comparison's folder."""
    report = CompareReport(compare_dir)
    entries = [report.entry(p) for p in report.points]
    verdict = report.verdict_text(entries)
    write_json(report.dir / "compare.json", {
        "domain": report.plan["domain"], "preset": report.plan["preset"],
        "objective": report.objective, "direction": report.direction, "seeds": report.seeds,
        "tuned": report.plan["tuned"], "method": METHOD, "verdict": verdict,
        "points": entries})
    blocks = report.blocks(entries, verdict)
    md = report.dir / "report.md"
    md.write_text(render_markdown(blocks, report.dir), encoding="utf-8")
    page = report.dir / "report.html"
    page.write_text(render_html(blocks, f"lr-suite compare: {report.plan['domain']}"),
                    encoding="utf-8")
    return md, page
