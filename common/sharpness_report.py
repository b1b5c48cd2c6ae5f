"""The sweep report's sharpness plot: sharpness over steps for each rate of a sweep, each
with its stability threshold, on a log axis, so progressive sharpening and the rates whose
sharpness crosses their line show at a glance."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.figures import pyplot, save_figure
from common.sharpness_callback import SHARPNESS_CSV


@dataclass
class SharpnessCurve:
    label: str
    learning_rate: float
    rule: str
    steps: np.ndarray
    sharpness: np.ndarray
    threshold: np.ndarray


def read_curve(run_dir: Path) -> SharpnessCurve | None:
    """The probe's readings of one run, or None when the probe did not run there."""
    path = Path(run_dir) / SHARPNESS_CSV
    if not path.exists():
        return None
    with path.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    if not rows:
        return None
    summary_path = Path(run_dir) / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
    rate = float(summary.get("learning_rate") or rows[0]["learning_rate"])
    rule = (summary.get("sharpness") or {}).get("rule") or "threshold"
    return SharpnessCurve(
        label=f"lr {rate:.3g}", learning_rate=rate, rule=rule,
        steps=np.array([int(r["step"]) for r in rows]),
        sharpness=np.array([float(r["sharpness"]) for r in rows]),
        threshold=np.array([float(r["threshold"]) for r in rows]))


def sharpness_figure(curves: Sequence[SharpnessCurve]):
    """A matplotlib figure: per rate, the sharpness (solid) and its threshold (dashed, the
    same colour). Readings at or below zero are left out (log axis)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.2))
    colours = plt.cm.viridis(np.linspace(0.0, 0.9, max(len(curves), 1)))
    for curve, colour in zip(sorted(curves, key=lambda c: c.learning_rate), colours,
                             strict=True):
        shown = curve.sharpness > 0
        axis.plot(curve.steps[shown], curve.sharpness[shown], color=colour, lw=1.6,
                  marker="o", ms=2.5, label=f"{curve.label}: sharpness")
        axis.plot(curve.steps, curve.threshold, color=colour, lw=1.0, ls="--",
                  label=f"{curve.label}: {curve.rule}")
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("sharpness (top Hessian eigenvalue)")
    preconditioned = any(c.rule not in ("2/lr", "threshold") for c in curves)
    axis.set_title("Sharpness against each rate's stability threshold (dashed)"
                   + ("; adaptive: preconditioned" if preconditioned else ""), fontsize=9)
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    return figure


def plot_sweep_sharpness(run_dirs: Sequence[Path], path: Path) -> Path | None:
    """Write the plot of the runs among `run_dirs` that have readings to `path` (a PNG);
    None, and no file, when none has."""
    curves = [c for c in (read_curve(d) for d in run_dirs) if c is not None]
    if not curves:
        return None
    return save_figure(sharpness_figure(curves), path, dpi=110)
