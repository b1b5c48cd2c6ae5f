"""Sweep reports: Markdown and a self-contained HTML page with the figures embedded.

A report is a list of blocks (heading, text, table, image) rendered twice, so the two
formats always say the same thing. Every figure's caption states the data, model,
budget and seed it came from.
"""

from __future__ import annotations

import base64
import csv
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.domain import get_domain
from common.errors import UserError
from common.runs import FINISHED_STATUSES, read_json

VERDICTS = ("too_low", "good", "too_high")


@dataclass
class Block:
    kind: str  # "h1", "h2", "text", "table", "image"
    content: Any
    caption: str = ""


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def _metric(summary: dict[str, Any], key: str) -> float | None:
    value = summary.get(key)
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


class SweepReport:
    def __init__(self, sweep_dir: Path):
        self.dir = sweep_dir
        self.state = read_json(sweep_dir / "sweep.json")
        self.objective = self.state["objective"]
        self.runs: dict[str, dict[str, Any]] = {}
        for group in ("rate", "schedule", "optimizer"):
            for path in sorted(sweep_dir.glob(f"{group}-*/summary.json")):
                self.runs[path.parent.name] = read_json(path)
        self.plots = sweep_dir / "plots"
        self.plots.mkdir(exist_ok=True)
        base = self.state["base_config"]
        first = next(iter(self.runs.values()), {})
        self.caption = (
            f"Data: {self.state.get('data', '?')}. Model: {self.state['domain']} default "
            f"({_model_words(self.state['domain'], base)}). Budget: {base['epochs']} epochs x "
            f"{first.get('steps_per_epoch', '?')} steps, batch {base['batch_size']}, optimizer "
            f"{base['optimizer']}. Seed {base['seed']}."
        )

    # -- groups --------------------------------------------------------------
    def rate_runs(self) -> list[dict[str, Any]]:
        runs = [s for name, s in self.runs.items() if name.startswith("rate-")]
        return sorted(runs, key=lambda s: float(s["learning_rate"]))

    def group(self, prefix: str, labels: list[str]) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for label in labels:
            summary = self.runs.get(f"{prefix}-{label}")
            if summary is None and prefix == "schedule" and label == "constant":
                summary = self._best_rate_run()
            if summary is None and prefix == "optimizer" and label == self.state["base_config"]["optimizer"]:
                summary = self._best_rate_run()
            if summary is not None:
                out.append((label, summary))
        return out

    def _best_rate_run(self) -> dict[str, Any] | None:
        best = self.state.get("best_rate")
        for summary in self.rate_runs():
            if best is not None and math.isclose(float(summary["learning_rate"]), best):
                return summary
        return None

    # -- figures -------------------------------------------------------------
    def u_curve(self) -> Path:
        plt = _plt()
        runs = self.rate_runs()
        figure, axis = plt.subplots(figsize=(7, 4.2))
        ok = [(float(s["learning_rate"]), _metric(s, self.objective)) for s in runs
              if s["status"] == "completed" and _metric(s, self.objective) is not None]
        if ok:
            axis.plot([r for r, _ in ok], [v for _, v in ok], "o-", color="C0", label=self.objective)
        diverged = [float(s["learning_rate"]) for s in runs if s["status"] == "diverged"]
        if diverged:
            low = axis.get_ylim()[0] if ok else 0.0
            axis.plot(diverged, [low] * len(diverged), "x", color="C3", ms=10, mew=2,
                      label="diverged")
        colors = {"too_low": "C1", "good": "C2", "too_high": "C3"}
        for s in runs:
            verdict = s.get("diagnosis", {}).get("verdict")
            if verdict in colors:
                axis.axvspan(float(s["learning_rate"]) / 1.3, float(s["learning_rate"]) * 1.3,
                             color=colors[verdict], alpha=0.12, lw=0)
        suggestion = self.state.get("range_test", {}).get("suggestion")
        if suggestion:
            axis.axvline(suggestion, color="C4", ls="--", label=f"range test {suggestion:.2g}")
        axis.set_xscale("log")
        axis.set_xlabel("learning rate (log scale); shading: diagnosis (orange too low, green good, red too high)", fontsize=8)
        axis.set_ylabel(f"final {self.objective}")
        axis.set_title(f"{self.state['domain']}: final {self.objective} against rate", fontsize=10)
        axis.legend(fontsize=8)
        return self._save(figure, "u_curve.png")

    def loss_curves(self) -> Path:
        plt = _plt()
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        cmap = plt.get_cmap("viridis")
        runs = self.rate_runs()
        for i, s in enumerate(runs):
            color = cmap(i / max(1, len(runs) - 1))
            label = f"lr {float(s['learning_rate']):.2g}{' (diverged)' if s['status'] == 'diverged' else ''}"
            steps, _, losses = read_steps(Path(s["run_dir"]))
            if len(losses):
                from common.diagnosis import centred_average

                keep = np.isfinite(losses)
                left.plot(steps[keep], centred_average(losses[keep], 11), color=color, label=label, lw=1.4)
            val = s.get("history", {}).get("val_loss", [])
            if val:
                right.plot(range(1, len(val) + 1), val, "o-", color=color, label=label, lw=1.4, ms=3)
        for axis, title in ((left, "training loss (per step, moving average of 11)"), (right, "validation loss (per epoch)")):
            axis.set_title(title, fontsize=10)
            axis.set_yscale("log")
            axis.legend(fontsize=7)
        left.set_xlabel("step")
        right.set_xlabel("epoch")
        return self._save(figure, "loss_curves.png")

    def comparison(self, prefix: str, labels: list[str], name: str) -> Path | None:
        runs = self.group(prefix, labels)
        if not runs:
            return None
        plt = _plt()
        panels = 2 if prefix == "schedule" else 1
        figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2))
        axes = np.atleast_1d(axes)
        for label, s in runs:
            values = s.get("history", {}).get(self.objective, [])
            if values:
                axes[0].plot(range(1, len(values) + 1), values, "o-", label=label, ms=3)
            if prefix == "schedule":
                steps, rates, _ = read_steps(Path(s["run_dir"]))
                if len(rates):
                    axes[1].plot(steps, rates, label=label, lw=1.4)
        axes[0].set_title(f"{self.objective} per epoch", fontsize=10)
        axes[0].set_xlabel("epoch")
        axes[0].legend(fontsize=7)
        if prefix == "schedule":
            axes[1].set_title("learning rate per step", fontsize=10)
            axes[1].set_xlabel("step")
            axes[1].legend(fontsize=7)
        return self._save(figure, name)

    def _save(self, figure, name: str) -> Path:
        figure.tight_layout()
        path = self.plots / name
        figure.savefig(path, dpi=100)
        _plt().close(figure)
        return path

    # -- tables ----------------------------------------------------------------
    def run_row(self, label: str, s: dict[str, Any]) -> list[str]:
        d = s.get("diagnosis", {})
        return [label, s.get("status", "?"), d.get("verdict", "?"), _fmt(_metric(s, self.objective)),
                _fmt(_metric(s, "test_" + self.objective.removeprefix("val_"))),
                _fmt(d.get("convergence_steps")), _fmt(d.get("stability"), 3),
                _fmt(d.get("overshoot"), 3), _fmt(s.get("wall_time_s"), 3)]

    def run_header(self, first: str) -> list[str]:
        test = "test_" + self.objective.removeprefix("val_")
        return [first, "status", "verdict", self.objective, test, "convergence steps",
                "stability", "overshoot", "wall s"]

    def seed_table(self) -> list[list[str]]:
        """Seed 003's comparison table, measured: medians per rate class."""
        by_class: dict[str, list[dict[str, Any]]] = {v: [] for v in VERDICTS}
        for s in self.rate_runs():
            verdict = s.get("diagnosis", {}).get("verdict")
            if verdict in by_class:
                by_class[verdict].append(s)

        def median(runs, getter):
            values = [getter(s) for s in runs]
            values = [v for v in values if v is not None and math.isfinite(v)]
            return _fmt(float(np.median(values)), 3) if values else "-"

        rows = [["rates in class"] + [", ".join(f"{float(s['learning_rate']):.2g}" for s in by_class[v]) or "-" for v in VERDICTS]]
        rows.append(["convergence speed (steps to 90% of the loss drop)"] +
                    [median(by_class[v], lambda s: s.get("diagnosis", {}).get("convergence_steps")) for v in VERDICTS])
        rows.append(["stability (relative batch-loss scatter)"] +
                    [median(by_class[v], lambda s: s.get("diagnosis", {}).get("stability")) for v in VERDICTS])
        rows.append(["overshoot (rebound above best loss)"] +
                    [median(by_class[v], lambda s: s.get("diagnosis", {}).get("overshoot")) for v in VERDICTS])
        rows.append([f"final performance ({self.objective})"] +
                    [median(by_class[v], lambda s: _metric(s, self.objective)) for v in VERDICTS])
        rows.append(["diverged runs"] +
                    [str(sum(s["status"] == "diverged" for s in by_class[v])) for v in VERDICTS])
        return rows

    # -- assembly --------------------------------------------------------------
    def blocks(self) -> list[Block]:
        domain = self.state["domain"]
        rt = self.state.get("range_test", {})
        best = self.state.get("best_rate")
        blocks = [
            Block("h1", f"Learning-rate sweep: {domain}"),
            Block("text", self.caption),
            Block("text", f"Best constant rate: {_fmt(best)}. Range test suggestion ({rt.get('rule', '?')}): "
                          f"{_fmt(rt.get('suggestion'))}"
                          + (f", {max(best, rt['suggestion']) / min(best, rt['suggestion']):.1f}x from the best rate."
                             if best and rt.get("suggestion") else ".")),
            Block("h2", "Final metric against rate (the U-curve)"),
            Block("image", self.u_curve(), self.caption),
            Block("table", [self.run_header("rate")] + [self.run_row(_fmt(float(s["learning_rate"])), s) for s in self.rate_runs()]),
            Block("h2", "Loss curves per rate"),
            Block("image", self.loss_curves(), self.caption),
            Block("h2", "Too low, good, too high: the comparison table, measured"),
            Block("table", [["", "too low", "good", "too high"]] + self.seed_table()),
        ]
        schedules = self.group("schedule", self.state["schedules"])
        if schedules:
            blocks += [Block("h2", f"Schedules at the best rate ({_fmt(best)})"),
                       Block("image", self.comparison("schedule", self.state["schedules"], "schedules.png"), self.caption),
                       Block("table", [self.run_header("schedule")] + [self.run_row(label, s) for label, s in schedules])]
        optimizers = self.group("optimizer", self.state["optimizers"])
        if optimizers:
            blocks += [Block("h2", f"Optimizers at the best rate ({_fmt(best)})"),
                       Block("image", self.comparison("optimizer", self.state["optimizers"], "optimizers.png"), self.caption),
                       Block("table", [self.run_header("optimizer")] + [self.run_row(label, s) for label, s in optimizers])]
        blocks.append(Block("text", "Verdicts and figures come from each run's summary.json "
                                    "(common/diagnosis.py names the thresholds)."))
        return blocks


def _model_words(domain_name: str, base: dict[str, Any]) -> str:
    """The domain's one-line model description (`Domain.describe_model`)."""
    try:
        domain = get_domain(domain_name)
    except UserError:  # a sweep of a domain no longer registered
        return "see config.json"
    return domain.describe_model(base) if domain.describe_model else "see config.json"


def render_markdown(blocks: list[Block], base: Path) -> str:
    lines = []
    for block in blocks:
        if block.kind == "h1":
            lines += [f"# {block.content}", ""]
        elif block.kind == "h2":
            lines += [f"## {block.content}", ""]
        elif block.kind == "text":
            lines += [block.content, ""]
        elif block.kind == "image":
            lines += [f"![{block.caption}]({block.content.relative_to(base).as_posix()})", "",
                      f"*{block.caption}*", ""]
        elif block.kind == "table":
            header, *rows = block.content
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


def render_html(blocks: list[Block], title: str) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "font-size:13px}th{background:#f3f3f3}img{max-width:100%}figcaption{font-size:12px;"
             "color:#555}</style></head><body>"]
    for block in blocks:
        if block.kind in ("h1", "h2"):
            parts.append(f"<{block.kind}>{html.escape(block.content)}</{block.kind}>")
        elif block.kind == "text":
            parts.append(f"<p>{html.escape(block.content)}</p>")
        elif block.kind == "image":
            data = base64.b64encode(Path(block.content).read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(block.caption)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
        elif block.kind == "table":
            header, *rows = block.content
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def rediagnose_sweep(sweep_dir: Path) -> int:
    """Re-run the diagnosis of every finished run of a sweep from what it recorded
    (steps.csv and the epoch history), so a sweep made under older rules reads with the
    current ones. Returns the number of runs updated."""
    from common.diagnosis import diagnose_run
    from common.runs import write_json

    range_test = read_json(sweep_dir / "sweep.json").get("range_test")
    updated = 0
    for path in sorted(sweep_dir.glob("*/summary.json")):
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


def write_overview(output: Path) -> tuple[Path, Path] | None:
    """`make report`: the latest sweep of each domain on one page."""
    latest = []
    for domain_dir in sorted(p for p in output.iterdir() if p.is_dir()) if output.exists() else []:
        sweeps = [p for p in (domain_dir / "sweeps").glob("*") if (p / "sweep.json").exists()
                  and "best_rate" in read_json(p / "sweep.json")]
        if sweeps:
            latest.append(max(sweeps, key=lambda p: (p / "sweep.json").stat().st_mtime))
    if not latest:
        return None
    blocks = [Block("h1", "Learning-rate sweeps across domains"),
              Block("text", "The latest finished sweep of each domain: where the good band of "
                            "constant rates lies, and how far the range test was from the best rate.")]
    rows = [["domain", "data", "good rates", "best rate", "range test", "best " + "objective", "sweep"]]
    for sweep_dir in latest:
        report = SweepReport(sweep_dir)
        good = [float(s["learning_rate"]) for s in report.rate_runs()
                if s.get("diagnosis", {}).get("verdict") == "good"]
        best = report.state.get("best_rate")
        best_run = report._best_rate_run() or {}
        rows.append([report.state["domain"], report.state.get("data", "?"),
                     f"{min(good):.2g} to {max(good):.2g}" if good else "-", _fmt(best),
                     _fmt(report.state.get("range_test", {}).get("suggestion")),
                     f"{report.objective}={_fmt(_metric(best_run, report.objective))}",
                     str(sweep_dir)])
        blocks += [Block("h2", report.state["domain"]), Block("image", report.u_curve(), report.caption)]
    blocks.insert(2, Block("table", rows))
    md = output / "report.md"
    md.write_text(render_markdown(blocks, output), encoding="utf-8")
    page = output / "report.html"
    page.write_text(render_html(blocks, "lr-suite: learning rates across domains"), encoding="utf-8")
    return md, page
