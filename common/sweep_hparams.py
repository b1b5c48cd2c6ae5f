"""A sweep's TensorBoard HParams: the experiment at the sweep's folder and one session per
run, so that `tensorboard --logdir <sweep>` plots the rate against the objective and the
final metrics in its HParams tab (scatter plot matrix; tick 'log' for the rate).

Each run's session holds its hyperparameters and its final values (from summary.json) as
scalars under sweep/; the per-epoch curves Keras wrote are joined from the run's train/ and
validation/ folders. Writing again (a resumed sweep) replaces what was written before.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from common.runs import FINISHED_STATUSES
from common.search_hparams import (
    hparams_api,
    make_hparam,
    objective_metrics,
    write_experiment,
    write_session,
)

SWEEP_SUFFIX = ".sweep-hparams"
METRIC_PREFIX = "sweep/"
LEADING = ("learning_rate", "log10_learning_rate", "optimizer", "schedule", "seed", "status")


def final_metric_names(summaries: Iterable[dict[str, Any]], objective: str) -> list[str]:
    """The objective, the final training loss and every test metric some run reports."""
    names = [objective, "train_loss"]
    for summary in summaries:
        names += [k for k in summary if k.startswith("test_") and _number(summary[k])]
    return list(dict.fromkeys(names))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _session_values(summary: dict[str, Any]) -> dict[str, Any]:
    rate = float(summary["learning_rate"])
    return {"learning_rate": rate, "log10_learning_rate": math.log10(rate),
            "optimizer": str(summary["optimizer"]), "schedule": str(summary["schedule"]),
            "seed": int(summary.get("seed", 0)), "status": str(summary.get("status", ""))}


def write_sweep_hparams(sweep_dir: Path, summaries: list[dict[str, Any]]) -> int:
    """Write the experiment for `sweep_dir` and a session for each run summary (a run's
    summary.json: run_dir, learning_rate, optimizer, schedule, seed, status, objective and
    final metrics). Summaries without a numeric rate (a run that never started) are left
    out. Returns the number of sessions written."""
    sweep_dir = Path(sweep_dir)
    runs = [s for s in summaries if s.get("run_dir") and _number(s.get("learning_rate"))
            and s["learning_rate"] > 0]
    if not runs:
        return 0
    hp_api = hparams_api()
    objective = runs[0].get("objective") or "val_loss"
    rates = [float(s["learning_rate"]) for s in runs]
    values = [_session_values(s) for s in runs]
    statuses = sorted(set(FINISHED_STATUSES) | {v["status"] for v in values})
    hparams = [
        make_hparam("learning_rate", hp_api.RealInterval(min(rates), max(rates))),
        make_hparam("log10_learning_rate", hp_api.RealInterval(
            math.log10(min(rates)), math.log10(max(rates)))),
        make_hparam("optimizer", hp_api.Discrete(sorted({v["optimizer"] for v in values}))),
        make_hparam("schedule", hp_api.Discrete(sorted({v["schedule"] for v in values}))),
        make_hparam("seed", hp_api.Discrete(sorted({v["seed"] for v in values}))),
        make_hparam("status", hp_api.Discrete(statuses)),
    ]
    names = final_metric_names(runs, objective)
    metrics = [hp_api.Metric(METRIC_PREFIX + name, display_name=_display(name, objective),
                             description=_metric_description(name, objective))
               for name in names]
    metrics += objective_metrics(objective)
    write_experiment(sweep_dir, hparams, metrics, suffix=SWEEP_SUFFIX, leading=LEADING)
    for summary, session in zip(runs, values, strict=True):
        run_dir = Path(summary["run_dir"])
        group = _relative_name(run_dir, sweep_dir)
        scalars = {METRIC_PREFIX + name: summary[name] for name in names
                   if _number(summary.get(name))}
        write_session(run_dir, session, group, scalars, suffix=SWEEP_SUFFIX,
                      descriptions={METRIC_PREFIX + n: _metric_description(n, objective)
                                    for n in names})
    return len(runs)


def _display(name: str, objective: str) -> str:
    return f"{name} (objective)" if name == objective else name


def _metric_description(name: str, objective: str) -> str:
    if name == objective:
        return "The run's final value of the objective its domain optimises."
    if name == "train_loss":
        return "The training loss at the run's last epoch."
    return "On the test split, after training."


def _relative_name(run_dir: Path, sweep_dir: Path) -> str:
    try:
        return str(run_dir.resolve().relative_to(sweep_dir.resolve()))
    except ValueError:
        return run_dir.name
