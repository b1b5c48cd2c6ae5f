"""Range test against a grid of rates: time spent, and how close its suggestion lands.

Runs `lr-find` once, a grid of full default runs at log-spaced constant rates, and one
full run at the range test's suggestion, all with the domain's default config and seed.
Prints each run's test objective and wall time, and the ratios that matter:
range-test time / one training run, and suggestion's metric - grid's best.

    python bench/range_test_vs_grid.py sentiment --data DIR [--rates 1e-4,3e-4,1e-3,3e-3,1e-2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.domain import get_domain  # noqa: E402
from common.lr_finder import find_learning_rate  # noqa: E402
from common.training import run_training  # noqa: E402


def test_metric(domain, summary) -> float:
    key = "test_" + domain.objective.removeprefix("val_")
    return summary.get(key, float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domain")
    parser.add_argument("--data", required=True)
    parser.add_argument("--rates", default="1e-4,3e-4,1e-3,3e-3,1e-2")
    parser.add_argument("--output", default=None, help="keep the runs here (default: temp)")
    args = parser.parse_args()
    domain = get_domain(args.domain)
    output = args.output or tempfile.mkdtemp(prefix="lrsuite-bench-")
    cfg = domain.config_cls(data=args.data, output=output, verbose=0)
    bundle = domain.load_data(cfg)

    started = time.perf_counter()
    finder = find_learning_rate(domain, cfg, bundle=bundle, out_dir=Path(output) / "lr-find")
    finder_time = time.perf_counter() - started
    rows = []
    for rate in [float(r) for r in args.rates.split(",")] + [finder.suggestion]:
        run_cfg = cfg.replace(learning_rate=rate)
        started = time.perf_counter()
        summary = run_training(domain, run_cfg, bundle=bundle, announce=False, save_model=False).summary
        rows.append((rate, test_metric(domain, summary), summary["diagnosis"]["verdict"],
                     summary["status"], time.perf_counter() - started))
        print(f"  lr {rate:.3g}: test {domain.objective.removeprefix('val_')} "
              f"{rows[-1][1]:.4f} ({rows[-1][2]}, {rows[-1][3]}) in {rows[-1][4]:.0f} s", flush=True)
    grid, suggested = rows[:-1], rows[-1]
    best = max(grid, key=lambda r: r[1]) if domain.direction == "max" else min(grid, key=lambda r: r[1])
    mean_run = sum(r[4] for r in grid) / len(grid)
    print(f"\ndata: {bundle.description}")
    print(f"range test: {finder_time:.1f} s, {len(finder.losses)} steps, suggestions "
          + ", ".join(f"{k} {v:.3g}" for k, v in finder.suggestions.items()))
    print("| rate | test metric | verdict | status | wall s |\n|---|---|---|---|---|")
    for rate, metric, verdict, status, wall in rows:
        tag = " (suggested)" if (rate, metric) == suggested[:2] else ""
        print(f"| {rate:.3g}{tag} | {metric:.4f} | {verdict} | {status} | {wall:.0f} |")
    print(f"\nrange test time / mean training run: {finder_time / mean_run:.3f}")
    print(f"suggestion's metric - grid best ({best[0]:.3g}): {suggested[1] - best[1]:+.4f}")


if __name__ == "__main__":
    main()
