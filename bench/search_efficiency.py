"""Hyperband against random search at equal budget, on the sentiment domain.

Both searches go through the suite's own tuning code (`common.tuning.run_search`, what
`lrsuite tune sentiment` runs), over sentiment's search space, with the same seed. Hyperband
runs first, every bracket; what it trained (epochs, summed over trials: every trial trains
from scratch) is the budget, and random search gets `budget // max_epochs` trials of
`max_epochs` epochs each, which spends the same. Early stopping is off in both, so
"epochs" is exactly what was trained. Prints, per tuner: trials, epochs and steps trained,
wall time, the best validation accuracy, and the best reached by 25/50/75/100% of the budget.

    python bench/search_efficiency.py [--data DIR] [--max-epochs 9] [--factor 3] [--seeds 1]
    python bench/search_efficiency.py --quick      # rt_polarity, 40 steps/epoch, max 3 epochs
    python bench/search_efficiency.py --generated  # small generated data instead
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import bench_common as bc

from common.runs import read_json
from common.tuning import run_search

BUDGET_MARKS = (0.25, 0.5, 0.75, 1.0)


def trials_in_order(search_dir: Path, records: list[dict]) -> list[dict]:
    """The finished trials in the order they ended (events.jsonl), each with the epochs
    and steps its runs trained."""
    by_id = {r["trial"]: r for r in records}
    ordered = []
    for line in (search_dir / "events.jsonl").read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["event"] == "end" and event["trial"] in by_id:
            record = by_id.pop(event["trial"])
            summaries = [read_json(Path(d) / "summary.json") for d in record.get("run_dirs", [])]
            record["epochs_trained"] = sum(s.get("epochs_run", 0) for s in summaries)
            record["steps_trained"] = sum(s.get("steps_run", 0) for s in summaries)
            ordered.append(record)
    return ordered


def best_within(trials: list[dict], epoch_budget: float) -> float:
    """Best validation score among the trials finished within `epoch_budget` epochs."""
    spent, best = 0, -math.inf
    for trial in trials:
        spent += trial["epochs_trained"]
        if spent > epoch_budget + 1e-9:
            break
        score = trial.get("score")
        if trial["status"] == "completed" and isinstance(score, (int, float)):
            best = max(best, score)
    return best


def search(tuner: str, fixed: dict, *, max_trials: int | None, max_epochs: int,
           factor: int, output: Path) -> dict:
    started = time.perf_counter()
    result = run_search(bc.get_domain("sentiment"), fixed={**fixed, "output": str(output)},
                        tuner=tuner, name=tuner, max_trials=max_trials,
                        max_epochs=max_epochs, factor=factor, announce=False)
    wall = time.perf_counter() - started
    trials = trials_in_order(result.search_dir, result.records)
    return {
        "tuner": tuner,
        "trials": trials,
        "epochs": sum(t["epochs_trained"] for t in trials),
        "steps": sum(t["steps_trained"] for t in trials),
        "wall_s": wall,
        "best": result.best["score"] if result.best else float("nan"),
    }


def score_text(score: float) -> str:
    return f"{score:.4f}" if math.isfinite(score) else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None,
                        help="sentiment folder (default: the shared rt_polarity)")
    parser.add_argument("--generated", action="store_true",
                        help="small generated reviews (the demo's data) instead of --data")
    parser.add_argument("--max-epochs", type=int, default=9,
                        help="epochs of Hyperband's longest trials and of every random trial")
    parser.add_argument("--factor", type=int, default=3, help="Hyperband's reduction factor")
    parser.add_argument("--steps-per-epoch", type=int, default=None,
                        help="cap on steps per epoch (default: one pass over train)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="repeat both searches with seeds 42, 43, ...")
    parser.add_argument("--quick", action="store_true",
                        help="max 3 epochs of 40 steps: a few minutes in all")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    args = parser.parse_args()
    if args.quick:
        args.max_epochs, args.steps_per_epoch, args.seeds = 3, 40, 1

    rows = []
    with tempfile.TemporaryDirectory(prefix="lrsuite-bench-search-") as tmp:
        if args.generated:
            from domains.sentiment.demo import write_demo_data

            data, data_label = str(write_demo_data(Path(tmp) / "data")), "generated reviews"
        else:
            data = args.data or bc.real_data("sentiment")
            data_label = Path(data).name
        for seed in range(42, 42 + args.seeds):
            fixed = {"data": data, "seed": seed, "early_stopping": 0}
            if args.steps_per_epoch:
                fixed["steps_per_epoch"] = args.steps_per_epoch
            output = Path(tmp) / f"seed{seed}"
            hyperband = search("hyperband", fixed, max_trials=None, max_epochs=args.max_epochs,
                               factor=args.factor, output=output)
            random_trials = max(1, round(hyperband["epochs"] / args.max_epochs))
            random = search("random", fixed, max_trials=random_trials,
                            max_epochs=args.max_epochs, factor=args.factor, output=output)
            budget = hyperband["epochs"]
            for result in (hyperband, random):
                marks = [score_text(best_within(result["trials"], mark * budget))
                         for mark in BUDGET_MARKS]
                rows.append([seed, result["tuner"], len(result["trials"]), result["epochs"],
                             result["steps"], f"{result['wall_s']:.0f}",
                             f"**{score_text(result['best'])}**", *marks])
                print(f"seed {seed} {result['tuner']}: {len(result['trials'])} trials, "
                      f"{result['epochs']} epochs, {result['steps']} steps, "
                      f"{result['wall_s']:.0f} s, best val_accuracy {score_text(result['best'])}",
                      flush=True)
    steps_note = f"{args.steps_per_epoch} steps per epoch" if args.steps_per_epoch else \
        "one pass over train per epoch"
    bc.emit_table(
        "Hyperband against random search at equal budget (sentiment, val accuracy)",
        ["seed", "tuner", "trials", "epochs trained", "steps trained", "wall s",
         "best val acc", *(f"best by {int(m * 100)}% of budget" for m in BUDGET_MARKS)],
        rows,
        notes=f"Data: {data_label}; sentiment's search space (rate, optimizer, schedule, "
        f"dropout); max {args.max_epochs} epochs per trial, Hyperband factor {args.factor}, "
        f"{steps_note}, early stopping off. Budget = the epochs Hyperband trained; random "
        "search gets that many epochs in trials of max epochs. \"Best by x%\": the best "
        "score among the trials that had finished when x% of that budget was spent.",
        markdown_path=args.markdown)


if __name__ == "__main__":
    main()
