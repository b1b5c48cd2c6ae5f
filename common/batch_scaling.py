"""How the best rate moves with the batch size: one rate grid per batch size, then a fit of
log(best rate) against log(batch size), set beside the two published rules: linear scaling
for SGD (slope 1, Goyal et al. 2017) and square-root scaling for Adam (slope 0.5, Malladi
et al. 2022).

Layout of `<output>/<domain>/sweeps/<name>/`:
    batch-<b>/                  an ordinary sweep (rate grid only) at batch size b
    batch_scaling.json          best rate per batch size, per-seed best rates, the fit
    batch_scaling.md, .html     the report section; plots/batch_scaling.png

Every batch size trains the same epochs, so larger batches take fewer steps. Each
sub-sweep resumes like any sweep: re-running the command reads finished runs back.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import UserError
from common.figures import pyplot, save_figure
from common.report_render import Block, render_html, render_markdown
from common.runs import read_json, write_json

SGD_FAMILY = frozenset({"sgd", "momentum", "nesterov", "schedule_free_sgd"})
RULES = {"linear (SGD, Goyal et al. 2017)": 1.0, "square root (Adam, Malladi et al. 2022)": 0.5}


def parse_batch_sizes(text: str) -> list[int]:
    """`32,64,128` -> [32, 64, 128]; at least two distinct positive integers."""
    try:
        sizes = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--batch-sizes must be integers joined by ','. Received: {text!r}") from None
    if len(sizes) < 2 or sizes[0] < 1:
        raise UserError("--batch-sizes needs at least 2 distinct batch sizes >= 1. "
                        f"Received: {text!r}")
    return sizes


def sub_sweep_dir(sweep_dir: Path, batch_size: int) -> Path:
    return sweep_dir / f"batch-{batch_size}"


def run_batch_size_sweep(domain, cfg, sweep_dir: Path, *, batch_sizes: list[int],
                         rates: list[float], seeds: list[int], range_test_steps: int) -> Path:
    """Runs (or resumes) the rate grid at each batch size, then writes the report."""
    from common.reporting import write_sweep_report
    from common.sweep import Sweep

    if not hasattr(cfg, "batch_size"):
        raise UserError(f"{domain.name}: its config has no batch_size, so --batch-sizes "
                        "cannot vary it")
    for size in batch_sizes:
        print(f"batch size {size}:", flush=True)
        sub = sub_sweep_dir(sweep_dir, size)
        Sweep(domain, cfg.replace(batch_size=size), sub, rates=rates, schedules=(),
              optimizers=(), seeds=seeds, range_test_steps=range_test_steps).run()
        write_sweep_report(sub)
    return write_batch_scaling_report(sweep_dir, batch_sizes)


def fit_slope(batch_sizes: list[float], rates: list[float]) -> tuple[float, float]:
    """Least squares of log(rate) on log(batch size): (slope, intercept), natural logs."""
    if len(batch_sizes) < 2:
        raise ValueError("a slope needs at least 2 batch sizes")
    slope, intercept = np.polyfit(np.log(batch_sizes), np.log(rates), 1)
    return float(slope), float(intercept)


def slope_resolution(rates: list[float], batch_sizes: list[int]) -> float:
    """The smallest slope the grid can show: one grid step over the batch-size span."""
    rates = sorted(rates)
    step = float(np.median(np.diff(np.log(rates)))) if len(rates) > 1 else math.inf
    return step / math.log(max(batch_sizes) / min(batch_sizes))


def scaling_figures(sweep_dir: Path, batch_sizes: list[int]) -> dict[str, Any]:
    from common.reporting import SweepReport, per_seed_best_rates

    rows, per_seed = [], {}
    optimizer, rates = None, []
    for size in batch_sizes:
        sub = sub_sweep_dir(sweep_dir, size)
        state = read_json(sub / "sweep.json")
        if "best_rate" not in state:
            raise UserError(f"{sub}: this batch size has not finished; re-run the sweep")
        optimizer = state["base_config"].get("optimizer")
        rates = state["rates"]
        seeds_best = per_seed_best_rates(SweepReport(sub))
        any_run = next((read_json(p) for p in sub.glob("rate-*/seed-*/summary.json")), {})
        rows.append({"batch_size": size, "best_rate": state["best_rate"],
                     "steps_per_epoch": any_run.get("steps_per_epoch"),
                     "per_seed_best": {str(k): v for k, v in sorted(seeds_best.items())}})
        for seed, rate in seeds_best.items():
            per_seed.setdefault(seed, {})[size] = rate
    slope, intercept = fit_slope([r["batch_size"] for r in rows], [r["best_rate"] for r in rows])
    seed_slopes = {str(seed): fit_slope(list(by_size), list(by_size.values()))[0]
                   for seed, by_size in sorted(per_seed.items()) if len(by_size) == len(rows)}
    resolution = slope_resolution(rates, batch_sizes)
    rule = "linear (SGD, Goyal et al. 2017)" if optimizer in SGD_FAMILY \
        else "square root (Adam, Malladi et al. 2022)"
    return {"optimizer": optimizer, "objective": state["objective"], "rows": rows,
            "slope": slope, "intercept": intercept, "seed_slopes": seed_slopes,
            "slope_resolution": resolution, "expected_rule": rule,
            "expected_slope": RULES[rule],
            "closer_to": min(RULES, key=lambda name: abs(RULES[name] - slope))}


def verdict_line(fig: dict[str, Any]) -> str:
    spread = ""
    if len(fig["seed_slopes"]) > 1:
        values = list(fig["seed_slopes"].values())
        spread = (f"; per seed {min(values):.2f} to {max(values):.2f} "
                  f"(n={len(values)}, a small sample)")
    line = (f"Fitted slope of log(best rate) on log(batch size): {fig['slope']:.2f}{spread}. "
            f"The rule for {fig['optimizer']} predicts {fig['expected_slope']:g} "
            f"({fig['expected_rule']}); the fit is closer to the {fig['closer_to']} rule.")
    if abs(fig["slope"] - fig["expected_slope"]) < fig["slope_resolution"]:
        line += (f" The grid resolves slopes only to about {fig['slope_resolution']:.2f} "
                 "(one grid step over the batch-size span): within that, it agrees.")
    else:
        line += (f" The grid resolves slopes to about {fig['slope_resolution']:.2f} "
                 "(one grid step over the batch-size span).")
    return line


def plot_scaling(fig: dict[str, Any], path: Path) -> Path:
    plt = pyplot()
    sizes = np.array([r["batch_size"] for r in fig["rows"]], dtype=float)
    best = np.array([r["best_rate"] for r in fig["rows"]])
    figure, axis = plt.subplots(figsize=(6, 4))
    for row in fig["rows"]:
        seeds = list(row["per_seed_best"].values())
        axis.scatter([row["batch_size"]] * len(seeds), seeds, color="grey", alpha=0.4, s=14)
    axis.plot(sizes, best, "o", color="black", label="best rate (mean over seeds)")
    axis.plot(sizes, np.exp(fig["intercept"]) * sizes ** fig["slope"], "-", color="C0",
              label=f"fit, slope {fig['slope']:.2f}")
    for (name, slope), style in zip(RULES.items(), ("--", ":"), strict=True):
        axis.plot(sizes, best[0] * (sizes / sizes[0]) ** slope, style, color="C3" if
                  slope == 1 else "C2", label=f"{name.split(' (')[0]} rule, slope {slope:g}")
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("batch size")
    axis.set_ylabel("best learning rate")
    axis.legend(fontsize=8)
    return save_figure(figure, path, dpi=110)


def write_batch_scaling_report(sweep_dir: Path, batch_sizes: list[int]) -> Path:
    fig = scaling_figures(sweep_dir, batch_sizes)
    write_json(sweep_dir / "batch_scaling.json", fig)
    plot = plot_scaling(fig, sweep_dir / "plots" / "batch_scaling.png")
    table = [["batch size", "steps per epoch", "best rate (mean objective)",
              "each seed's best rate"]]
    for row in fig["rows"]:
        seeds = ", ".join(f"{s}: {r:.3g}" for s, r in row["per_seed_best"].items())
        table.append([str(row["batch_size"]), str(row["steps_per_epoch"] or "-"),
                      f"{row['best_rate']:.3g}", seeds or "-"])
    blocks = [
        Block("h1", f"Batch-size scaling of the best rate: {fig['optimizer']}"),
        Block("text", "Each batch size ran the same rate grid for the same epochs, so larger "
                      "batches took fewer steps. Each batch size's own sweep report is in its "
                      "batch-<b>/ folder."),
        Block("image", plot,
              caption="Best rate against batch size (log-log): black the best mean rate, grey "
                      "each seed's, blue the fit, dashed and dotted the two rules from the "
                      "smallest batch's best rate."),
        Block("table", table),
        Block("text", verdict_line(fig)),
    ]
    md = sweep_dir / "batch_scaling.md"
    md.write_text(render_markdown(blocks, sweep_dir))
    (sweep_dir / "batch_scaling.html").write_text(
        render_html(blocks, "Batch-size scaling of the best rate"))
    return md
