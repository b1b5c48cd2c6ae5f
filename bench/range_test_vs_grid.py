"""Range test against a grid of rates: time spent, and how close its suggestion lands.

Runs `lr-find` once, a grid of full default runs at log-spaced constant rates, and one
full run at the range test's suggestion, all with the domain's default config and seed.
Prints each run's test objective and wall time, and the ratios that matter:
range-test time / one training run, and suggestion's metric - grid's best.

    python bench/range_test_vs_grid.py sentiment [--data DIR] [--rates 1e-4,3e-4,1e-3,3e-3,1e-2]
    python bench/range_test_vs_grid.py --quick [DOMAIN ...]   # 2 rates, 1 epoch of 30 steps

`--quick` (all four domains unless named) is a smoke run of the method, not a verdict:
runs that short rarely separate the rates.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import bench_common as bc

from common.lr_finder import find_learning_rate
from common.training import run_training

# Quick mode: few short runs; translation scores BLEU on the first test sentences only
# and warms up for half of its one epoch (a warmup as long as training is refused).
QUICK_RATES = "1e-3,1e-2"
QUICK_BUDGET = {"epochs": 1, "steps_per_epoch": 30}
QUICK_EXTRA = {"translation": {"max_eval_sentences": 64, "warmup_epochs": 0.5}}
QUICK_RANGE_TEST_STEPS = 50


def test_metric(domain, summary) -> float:
    key = "test_" + domain.objective.removeprefix("val_")
    return summary.get(key, float("nan"))


def compare(name: str, data: str | None, rates: list[float], output: str, *, quick: bool
            ) -> list[object]:
    domain = bc.get_domain(name)
    small = quick and name in bc.SLOW_STEP_DOMAINS
    overrides = {**QUICK_BUDGET, **QUICK_EXTRA.get(name, {})} if quick else {}
    cfg = bc.bench_config(domain, data or bc.real_data(name), small=small, output=output,
                          **overrides)
    bundle = domain.load_data(cfg)
    metric_name = domain.objective.removeprefix("val_")

    started = time.perf_counter()
    finder = find_learning_rate(domain, cfg, bundle=bundle, out_dir=Path(output) / name / "lr-find",
                                num_steps=QUICK_RANGE_TEST_STEPS if quick else 100)
    finder_time = time.perf_counter() - started
    rows = []
    for rate in rates + [finder.suggestion]:
        run_cfg = cfg.replace(learning_rate=rate)
        started = time.perf_counter()
        summary = run_training(domain, run_cfg, bundle=bundle, announce=False, save_model=False).summary
        rows.append((rate, test_metric(domain, summary), summary["diagnosis"]["verdict"],
                     summary["status"], time.perf_counter() - started))
        print(f"  {name} lr {rate:.3g}: test {metric_name} "
              f"{rows[-1][1]:.4f} ({rows[-1][2]}, {rows[-1][3]}) in {rows[-1][4]:.0f} s", flush=True)
    grid, suggested = rows[:-1], rows[-1]
    best = max(grid, key=lambda r: r[1]) if domain.direction == "max" else min(grid, key=lambda r: r[1])
    mean_run = sum(r[4] for r in grid) / len(grid)
    print(f"\n{name} data: {bundle.description}")
    print(f"range test: {finder_time:.1f} s, {len(finder.losses)} steps, suggestions "
          + ", ".join(f"{k} {v:.3g}" for k, v in finder.suggestions.items()))
    print("| rate | test metric | verdict | status | wall s |\n|---|---|---|---|---|")
    for rate, metric, verdict, status, wall in rows:
        tag = " (suggested)" if (rate, metric) == suggested[:2] else ""
        print(f"| {rate:.3g}{tag} | {metric:.4f} | {verdict} | {status} | {wall:.0f} |")
    print(f"\nrange test time / mean training run: {finder_time / mean_run:.3f}")
    print(f"suggestion's metric - grid best ({best[0]:.3g}): {suggested[1] - best[1]:+.4f}")
    grid_text = " / ".join(f"{r[0]:.0e}: {r[1]:.3f}" for r in grid)
    epochs = f"{cfg.epochs} epoch" + ("s" if cfg.epochs != 1 else "")
    lower_better = " (lower is better)" if domain.direction == "min" else ""
    return [name, f"{bc.config_label(cfg, small)}, {epochs}", f"test {metric_name}{lower_better}",
            grid_text, f"{suggested[0]:.2g}: {suggested[1]:.3f}",
            f"{suggested[1] - best[1]:+.3f}", f"{finder_time:.1f} s / {len(finder.losses)} steps",
            f"**{finder_time / mean_run:.2f}**"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domains", nargs="*", metavar="DOMAIN",
                        help="domain(s) (with --quick, default all four)")
    parser.add_argument("--data", default=None, help="data of the one DOMAIN given "
                        "(default: its real data under ../shared/data)")
    parser.add_argument("--rates", default=None,
                        help="comma-separated grid (default 1e-4,3e-4,1e-3,3e-3,1e-2; quick "
                        f"{QUICK_RATES})")
    parser.add_argument("--output", default=None, help="keep the runs here (default: temp)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_BUDGET['epochs']} epochs of {QUICK_BUDGET['steps_per_epoch']} "
                        "steps per run, 2 rates, small models where a step is slow")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    args = parser.parse_args()
    if not args.domains and not args.quick:
        parser.error("name a DOMAIN (or use --quick for all four)")
    rates_text = args.rates or (QUICK_RATES if args.quick else "1e-4,3e-4,1e-3,3e-3,1e-2")
    rates = [float(r) for r in rates_text.split(",")]
    output = args.output or tempfile.mkdtemp(prefix="lrsuite-bench-")
    rows = [compare(name, args.data, rates, output, quick=args.quick)
            for name in bc.parse_domains(args.domains, args.data)]
    bc.emit_table(
        "LR range test against a grid of rates",
        ["domain", "config", "metric", "grid: rate: metric", "suggestion: metric",
         "suggestion - grid best", "range test", "range test / mean run"],
        rows,
        notes="Each run at the domain's default schedule and seed, evaluated on the test split; "
        "the last column is the range test's wall time over one grid run's."
        + (" Quick mode: runs this short are too brief to rank the rates." if args.quick else ""),
        markdown_path=args.markdown)


if __name__ == "__main__":
    main()
