"""What a search keeps beside Keras Tuner's own state: one record per finished trial, the
event log, the table of trials and best.json (and reading best.json back for
`lrsuite train --from-best`).

Keras Tuner's oracle holds each trial's values and score; a record adds what the oracle
does not: the config overrides, the run directories, fold scores, wall time and the reason
a trial diverged or failed. The best trial is the oracle's (`get_best_trials`).
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.runs import read_json, write_json
from common.search_compute import write_compute_section

# Left out of `--from-best`: where the search ran and how much it was allowed to train.
BUDGET_FIELDS = frozenset({"epochs", "steps_per_epoch", "output", "run_name", "resume",
                           "verbose"})
COLUMNS = ["trial", "rate", "optimizer", "schedule", "epochs", "score", "status", "time_s"]
# Sampled hyperparameters already in COLUMNS (under their column's name).
SHOWN_IN_COLUMNS = frozenset({"learning_rate", "optimizer", "schedule", "epochs"})


def _is_finite_score(score: Any) -> bool:
    return isinstance(score, (int, float)) and math.isfinite(score)


def best_trial_id(oracle) -> str | None:
    """The oracle's best completed trial with a finite score (diverged trials score +-inf)."""
    for trial in oracle.get_best_trials(1):
        if trial.status == "COMPLETED" and _is_finite_score(trial.score):
            return trial.trial_id
    return None


def mean_curve_and_best_epoch(curves: list[list[float]], direction: str
                              ) -> tuple[list[float], int]:
    """The per-epoch mean over folds' objective curves, and its best epoch (0-based)."""
    length = min(len(c) for c in curves)
    mean_curve = [statistics.fmean(c[i] for c in curves) for i in range(length)]
    pick = max if direction == "max" else min
    return mean_curve, mean_curve.index(pick(mean_curve))


class TrialStore:
    """The records of one search folder.

    Args:
        folder: the search folder.
        domain: its Domain (name, objective, direction).
        base_cfg: the config every trial starts from (the table shows its values where a
            trial did not search them).
        planned: trials planned, for the progress line (None: unknown).
        announce: print one line per finished trial and the table at the end.
    """

    def __init__(self, folder: Path, domain, base_cfg, planned: int | None, announce: bool):
        self.dir = folder
        self.domain = domain
        self.base_cfg = base_cfg
        self.planned = planned
        self.announce = announce

    def log(self, event: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({**event, "time": round(time.time(), 3), "pid": os.getpid(),
                           "tuner_id": os.environ.get("KERASTUNER_TUNER_ID", "tuner0")})
        with open(self.dir / "events.jsonl", "a", encoding="utf-8") as stream:
            stream.write(line + "\n")

    def finish(self, record, status, score, started, message: str = "", oracle=None) -> None:
        record.update({"status": status, "score": score,
                       "wall_time_s": round(time.perf_counter() - started, 3)})
        if message:
            record["message"] = message
        write_json(self.dir / "results" / f"trial_{record['trial']}.json", record)
        self.log({"event": "end", "trial": record["trial"], "status": status})
        if self.announce:
            print(self.progress_line(record, oracle), flush=True)

    def records(self) -> list[dict[str, Any]]:
        folder = self.dir / "results"
        if not folder.exists():
            return []
        return [read_json(p) for p in sorted(folder.glob("trial_*.json"))]

    def record(self, trial_id: str | None) -> dict[str, Any] | None:
        path = self.dir / "results" / f"trial_{trial_id}.json"
        return read_json(path) if trial_id is not None and path.exists() else None

    def best_record(self, oracle) -> dict[str, Any] | None:
        return self.record(best_trial_id(oracle))

    def best_of_records(self) -> dict[str, Any] | None:
        """The best record read from this folder alone: for a distributed search's worker,
        whose oracle (the chief's) may have stopped by the time it asks."""
        scored = [r for r in self.records()
                  if r["status"] == "completed" and _is_finite_score(r.get("score"))]
        sign = -1 if self.domain.direction == "max" else 1
        return min(scored, key=lambda r: (sign * r["score"], r["trial"])) if scored else None

    def progress_line(self, record: dict[str, Any], oracle=None) -> str:
        # The oracle has not ended the current trial yet: weigh it against the oracle's best.
        candidates = [r for r in (self.best_record(oracle) if oracle else None, record)
                      if r and r["status"] == "completed" and _is_finite_score(r["score"])]
        sign = -1 if self.domain.direction == "max" else 1
        best = min(candidates, key=lambda r: sign * r["score"]) if candidates else None
        values = record["hyperparameters"]
        overrides = record["overrides"]
        rate = values.get("learning_rate", overrides.get("learning_rate"))
        best_text = (f"best so far {_score_text(best['score'])} (trial {best['trial']})"
                     if best else "no completed trial yet")
        return (f"trial {len(self.records())} of {self.planned or '?'} [{record['trial']}]: "
                f"lr={_rate_text(rate)} {overrides.get('optimizer', self.base_cfg.optimizer)} "
                f"{overrides.get('schedule', self.base_cfg.schedule)} "
                f"epochs={values.get('epochs')} -> {self.domain.objective}="
                f"{_score_text(record.get('score'))} "
                f"({record['status']}, {record['wall_time_s']:.1f} s); {best_text}")

    @staticmethod
    def sampled_columns(records: list[dict[str, Any]]) -> list[str]:
        """Every other hyperparameter some trial sampled (dropout, cosine/alpha, ...)."""
        names = {k for r in records for k in r.get("hyperparameters", {})}
        return sorted(names - SHOWN_IN_COLUMNS)

    def table_rows(self, records: list[dict[str, Any]]) -> list[dict[str, str]]:
        """One row per trial: COLUMNS, then each sampled column ("-" where a trial did not
        sample it, e.g. another schedule's parameter)."""
        extra = self.sampled_columns(records)
        rows = []
        for r in records:
            o = r.get("overrides", {})
            std = f" ±{r['score_std']:.3g}" if "score_std" in r else ""
            rows.append({
                "trial": r["trial"],
                "rate": _rate_text(o.get("learning_rate", self.base_cfg.learning_rate)),
                "optimizer": str(o.get("optimizer", self.base_cfg.optimizer)),
                "schedule": str(o.get("schedule", self.base_cfg.schedule)),
                "epochs": str(o.get("epochs", "")),
                "score": _score_text(r.get("score")) + std,
                "status": r["status"],
                "time_s": f"{r.get('wall_time_s', 0):.1f}",
                **{name: _value_text(r.get("hyperparameters", {}).get(name)) for name in extra},
            })
        return rows

    def write_results(self, oracle, search: dict[str, Any]) -> dict[str, Any] | None:
        """trials.txt, trials.csv and best.json; `search` holds the search's tuner,
        max_epochs, fixed flags and smoke switch for best.json."""
        records = self.records()
        rows = self.table_rows(records)
        columns = COLUMNS + self.sampled_columns(records)
        widths = {c: max([len(c)] + [len(row[c]) for row in rows]) for c in columns}
        lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
        lines += ["  ".join(row[c].ljust(widths[c]) for c in columns) for row in rows]
        table = "\n".join(line.rstrip() for line in lines) + "\n"
        (self.dir / "trials.txt").write_text(table, encoding="utf-8")
        compute, compute_text = write_compute_section(self.dir, records, self.domain.direction,
                                                      self.domain.objective)
        with open(self.dir / "trials.csv", "w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        best = self.best_record(oracle)
        summary = None
        if best is not None:
            summary = {
                "domain": self.domain.name,
                "search_dir": str(self.dir),
                "tuner": search["tuner"],
                "prune": search.get("prune"),
                "objective": self.domain.objective,
                "direction": self.domain.direction,
                "trial": best["trial"],
                "score": best["score"],
                "score_std": best.get("score_std"),
                "best_epoch": best.get("best_epoch"),
                "hyperparameters": best["hyperparameters"],
                "overrides": {k: v for k, v in best["overrides"].items() if k != "epochs"},
                "max_epochs": search["max_epochs"],
                "fixed": {k: v for k, v in search["fixed"].items() if k not in BUDGET_FIELDS},
                "smoke": search["smoke"],
                "run_dirs": best.get("run_dirs", []),
                "trials": len(records),
                "statuses": {s: sum(r["status"] == s for r in records)
                             for s in sorted({r["status"] for r in records})},
                # The winner's own time; the search's, every trial's together, beside it.
                "trial_time_s": round(best.get("wall_time_s", 0), 1),
                "search_time_s": round(sum(r.get("wall_time_s", 0) for r in records), 1),
                "compute": compute,
            }
            write_json(self.dir / "best.json", summary)
        if self.announce:
            print(table + compute_text, end="", flush=True)
            if summary:
                print(f"best: trial {best['trial']} {self.domain.objective}="
                      f"{_score_text(best['score'])}; retrain it with: lrsuite train "
                      f"{self.domain.name} --from-best {self.dir}", flush=True)
            else:
                print("no trial completed: no best.json written.", flush=True)
        return summary


def config_overrides_from_best(search_dir: str | os.PathLike) -> dict[str, Any]:
    """Config values that retrain a search's winner at full budget.

    The searched values and the flags the search was run with, trained for the search's
    longest budget (`max_epochs`: schedules are planned over it) on every step of an
    epoch (no `steps_per_epoch` cap), outside the search folder. Flags given to `train`
    go on top (e.g. `--epochs`).

    Raises:
        UserError: no best.json in `search_dir` (the search has not finished a trial).
    """
    path = Path(search_dir) / "best.json"
    if not path.is_file():
        raise UserError(f"{search_dir}: no best.json there; pass a search folder "
                        "(<output>/<domain>/tuning/<name>) with at least one completed trial.")
    best = read_json(path)
    values = {k: v for k, v in best.get("fixed", {}).items() if k not in BUDGET_FIELDS}
    values.update(best.get("overrides", {}))
    if best.get("max_epochs"):
        values["epochs"] = best["max_epochs"]
    return _tuples(values)


def _tuples(value: Any) -> Any:
    """JSON has no tuples; configs store sequences as tuples."""
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _score_text(score: Any) -> str:
    if isinstance(score, str):  # JSON keeps inf as the string "inf"
        return score
    if not isinstance(score, (int, float)):
        return "-"
    return f"{score:.4g}" if math.isfinite(score) else str(score)


def _value_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _rate_text(rate: Any) -> str:
    return f"{rate:.3g}" if isinstance(rate, (int, float)) else str(rate)
