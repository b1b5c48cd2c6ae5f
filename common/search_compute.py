"""The compute section of a search report: what the search spent and what it bought.

Epochs and wall time in total and per status (completed, pruned, failed, and diverged
when some trial diverged), the anytime curve (the best objective so far against the
epochs spent, trials taken in the order they ended) as `compute_anytime.png`, and for
PBT every member's rate per round (`pbt_schedules.png`, log y, the winner's lineage
drawn thick). The figures go to `compute.json` (as text: `compute.txt`, printed after
the table of trials) and into best.json under "compute", so a
comparison across tuners reads them from either file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from common.figures import pyplot, save_figure
from common.runs import read_json, write_json

ALWAYS_SHOWN = ("completed", "pruned", "failed")
SCORED = ("completed", "pruned")  # statuses whose score is a real observation


def trial_epochs(record: dict[str, Any]) -> int:
    """Epochs a trial trained: its own count, else its run directories' summaries."""
    if "epochs_run" in record:
        return int(record["epochs_run"])
    total = 0
    for run_dir in record.get("run_dirs", []):
        path = Path(run_dir) / "summary.json"
        if path.exists():
            total += int(read_json(path).get("epochs_run", 0))
    return total


def end_times(search_dir: Path) -> dict[str, float]:
    """Each trial's last end event in events.jsonl."""
    path = Path(search_dir) / "events.jsonl"
    ends: dict[str, float] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                event = json.loads(line)
                if event.get("event") == "end":
                    ends[str(event["trial"])] = float(event["time"])
    return ends


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def compute_figures(search_dir: Path, records: list[dict[str, Any]],
                    direction: str) -> dict[str, Any]:
    ends = end_times(search_dir)
    ordered = sorted(records, key=lambda r: (ends.get(str(r["trial"]), math.inf),
                                             str(r["trial"])))
    statuses = list(ALWAYS_SHOWN) + sorted({r["status"] for r in records} - set(ALWAYS_SHOWN))
    by_status = {s: {"trials": 0, "epochs": 0, "wall_time_s": 0.0} for s in statuses}
    anytime, spent, best = [], 0, None
    better = max if direction == "max" else min
    for record in ordered:
        epochs = trial_epochs(record)
        row = by_status[record["status"]]
        row["trials"] += 1
        row["epochs"] += epochs
        row["wall_time_s"] = round(row["wall_time_s"] + record.get("wall_time_s", 0.0), 3)
        spent += epochs
        score = record.get("score")
        if record["status"] in SCORED and _finite(score):
            best = score if best is None else better(best, score)
        anytime.append({"trial": record["trial"], "epochs": spent, "best": best})
    return {
        "epochs": spent,
        "wall_time_s": round(sum(r.get("wall_time_s", 0.0) for r in records), 3),
        "by_status": by_status,
        "anytime": anytime,
    }


def compute_text(figures: dict[str, Any]) -> str:
    lines = ["", "compute",
             f"  total: {figures['epochs']} epochs, {figures['wall_time_s']:.1f} s"]
    for status, row in figures["by_status"].items():
        lines.append(f"  {status}: {row['trials']} trials, {row['epochs']} epochs, "
                     f"{row['wall_time_s']:.1f} s")
    reached = [p for p in figures["anytime"] if p["best"] is not None]
    if reached:
        lines.append(f"  anytime: first score after {reached[0]['epochs']} epochs, best "
                     f"{reached[-1]['best']:.4g} after {figures['epochs']} epochs "
                     "(compute_anytime.png)")
    return "\n".join(lines) + "\n"


def write_compute_section(search_dir: Path, records: list[dict[str, Any]], direction: str,
                          objective: str) -> tuple[dict[str, Any], str]:
    """compute.json and compute_anytime.png; returns the figures and the report's text."""
    figures = compute_figures(search_dir, records, direction)
    write_json(Path(search_dir) / "compute.json", figures)
    text = compute_text(figures)
    (Path(search_dir) / "compute.txt").write_text(text.lstrip("\n"), encoding="utf-8")
    points = [p for p in figures["anytime"] if p["best"] is not None]
    if points:
        plt = pyplot()
        figure, axes = plt.subplots(figsize=(6, 4))
        axes.step([p["epochs"] for p in points], [p["best"] for p in points], where="post")
        axes.set_xlabel("cumulative epochs")
        axes.set_ylabel(f"best {objective} so far")
        axes.set_title("anytime curve")
        save_figure(figure, Path(search_dir) / "compute_anytime.png")
    return figures, text


def plot_population_schedules(search_dir: Path, record: dict[str, Any] | None,
                              ready_epochs: int) -> Path | None:
    """Every member's rate per round as steps over epochs; the winner's lineage thick."""
    if not record or not record.get("members"):
        return None
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for member, entries in sorted(record["members"].items(), key=lambda m: int(m[0])):
        rates = [e["rate"] for e in entries]
        epochs = [ready_epochs * e["round"] for e in entries]
        axes.step(epochs + [epochs[-1] + ready_epochs], rates + rates[-1:], where="post",
                  alpha=0.5, linewidth=1, label=f"member {member}")
    winner = record.get("winner")
    if winner:
        rates = winner["rates"]
        epochs = [ready_epochs * r for r in range(len(rates) + 1)]
        axes.step(epochs, rates + rates[-1:], where="post", color="black", linewidth=3,
                  label=f"winner (member {winner['member']})")
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("learning rate")
    axes.set_title("PBT rate schedules")
    axes.legend(fontsize="small")
    return save_figure(figure, Path(search_dir) / "pbt_schedules.png")
