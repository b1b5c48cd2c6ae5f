"""Learning-rate sweeps: a log-spaced grid of constant rates, then schedules and optimizers
compared at the best rate. Every point is one ordinary `run_training` run.

Layout of `<output>/<domain>/sweeps/<name>/`:
    sweep.json           the plan: base config, rates, schedules, optimizers, data, budget
    lr-find/             the range test (its suggestion is drawn on the U-curve)
    rate-<r>/            one run per rate
    schedule-<s>/        one run per schedule, at the best rate
    optimizer-<o>/       one run per optimizer, at the best rate
    report.md, report.html, plots/   (common.reporting)

Re-running the same command resumes: finished runs (completed or diverged) are read back,
an interrupted one continues from its last completed epoch, nothing is repeated.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import UserError
from common.resumable import finished_summary, run_or_resume
from common.runs import read_json, write_json

DEFAULT_SCHEDULES = ("constant", "step", "exponential", "cosine", "triangular", "one_cycle")
DEFAULT_OPTIMIZERS = ("momentum", "adagrad", "rmsprop", "adam", "adamw")


@dataclass
class SweepRun:
    group: str  # "rate", "schedule" or "optimizer"
    label: str
    overrides: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.group}-{self.label}"


def log_rates(low: float, high: float, count: int) -> list[float]:
    """`count` rates spaced evenly on a log axis from `low` to `high`, rounded to 2 digits."""
    if not (0 < low < high) or not all(map(math.isfinite, (low, high))):
        raise UserError(f"rate bounds must satisfy 0 < min < max. Received: min={low}, max={high}")
    if count < 2:
        raise UserError(f"a sweep needs at least 2 rates. Received: num_rates={count}")
    return [float(f"{r:.2g}") for r in np.logspace(math.log10(low), math.log10(high), count)]


def rate_label(rate: float) -> str:
    return f"{rate:.0e}".replace("e-0", "e-").replace("e+0", "e")


def objective_value(summary: dict[str, Any], objective: str) -> float | None:
    value = summary.get(objective)
    if summary.get("status") != "completed" or value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def best_run(summaries: list[dict[str, Any]], objective: str, direction: str) -> dict | None:
    scored = [(objective_value(s, objective), s) for s in summaries]
    scored = [(v, s) for v, s in scored if v is not None]
    if not scored:
        return None
    pick = max if direction == "max" else min
    return pick(scored, key=lambda item: item[0])[1]


class Sweep:
    """Plans, runs (or resumes) and collects one sweep."""

    def __init__(self, domain, cfg, sweep_dir: Path, *, rates: list[float],
                 schedules: tuple[str, ...], optimizers: tuple[str, ...],
                 range_test_steps: int = 100, announce: bool = True):
        self.domain = domain
        self.cfg = cfg
        self.dir = sweep_dir
        self.rates = rates
        self.schedules = schedules
        self.optimizers = optimizers
        self.range_test_steps = range_test_steps
        self.announce = announce
        self.summaries: dict[str, dict[str, Any]] = {}
        self._started = 0.0
        self._done = 0

    # -- plan ---------------------------------------------------------------
    def plan_file(self) -> dict[str, Any]:
        return {
            "domain": self.domain.name,
            "base_config": self.cfg.to_dict(),
            "rates": self.rates,
            "schedules": list(self.schedules),
            "optimizers": list(self.optimizers),
        }

    def check_plan(self) -> None:
        """A resumed sweep must be the same sweep: the stored plan wins, differences fail."""
        path = self.dir / "sweep.json"
        if not path.exists():
            return
        stored = read_json(path)
        wanted = json.loads(json.dumps(self.plan_file()))  # tuples read back as lists
        keys = ("rates", "schedules", "optimizers")
        changed = [k for k in keys if stored.get(k) != wanted[k]]
        ignore = {"output", "run_name", "resume", "verbose"}
        base_changed = sorted(
            k for k in set(stored.get("base_config", {})) | set(wanted["base_config"])
            if k not in ignore and stored["base_config"].get(k) != wanted["base_config"].get(k))
        if changed or base_changed:
            raise UserError(
                f"{path}: this sweep was started with other settings "
                f"({', '.join(changed + base_changed)} differ). Re-run it with the same flags, "
                "or give a new --name."
            )

    def total_runs(self) -> int:
        return len(self.rates) + len(self.schedules) + len(self.optimizers)

    # -- run ----------------------------------------------------------------
    def _run(self, run: SweepRun, bundle) -> dict[str, Any]:
        summary, reused = run_or_resume(self.domain, self.cfg.replace(**run.overrides),
                                        self.dir, run.name, bundle=bundle)
        self._progress(run, summary, reused=reused)
        return summary

    def _progress(self, run: SweepRun, summary: dict[str, Any], reused: bool) -> None:
        self._done += 1
        if not self.announce:
            return
        elapsed = time.perf_counter() - self._started
        left = self.total_runs() - self._done
        fresh = max(1, self._fresh)
        eta = elapsed / fresh * left if self._fresh else float("nan")
        value = summary.get(self.domain.objective)
        shown = f"{value:.4f}" if isinstance(value, (int, float)) else "-"
        verdict = summary.get("diagnosis", {}).get("verdict", "?")
        print(f"[{self._done}/{self.total_runs()}] {run.name}: {summary.get('status')}, "
              f"{self.domain.objective}={shown}, {verdict}"
              f"{' (done before)' if reused else ''}; elapsed {elapsed:.0f} s"
              f"{f', about {eta:.0f} s left' if math.isfinite(eta) else ''}", flush=True)

    def run(self) -> dict[str, Any]:
        from common.lr_finder import find_learning_rate

        self.check_plan()
        # Bad data fails here, before sweep.json exists: a rerun with the data fixed is then
        # a new sweep, not one "started with other settings".
        bundle = self.domain.load_data(self.cfg)
        if not (self.dir / "sweep.json").exists():
            write_json(self.dir / "sweep.json", self.plan_file())
        self._started = time.perf_counter()
        self._fresh = 0
        finder_json = self.dir / "lr-find" / "range_test.json"
        if finder_json.exists():
            finder = read_json(finder_json)
        else:
            result = find_learning_rate(self.domain, self.cfg, bundle=bundle,
                                        out_dir=self.dir / "lr-find",
                                        num_steps=self.range_test_steps)
            finder = result.as_summary()
        if self.announce:
            print(f"range test suggests {finder['suggestion']:.3g}", flush=True)

        grid = []
        for rate in self.rates:
            run = SweepRun("rate", rate_label(rate), {"learning_rate": rate, "schedule": "constant"})
            summary = self._counted(run, bundle)
            grid.append(summary)
        best = best_run(grid, self.domain.objective, self.domain.direction)
        if best is None:
            raise UserError(
                f"{self.dir}: no rate of the grid completed ({', '.join(map(str, self.rates))}); "
                "lower --max-lr or check the data."
            )
        best_rate = float(best["learning_rate"])
        for schedule in self.schedules:
            run = SweepRun("schedule", schedule, {"learning_rate": best_rate, "schedule": schedule})
            if schedule == "constant":  # the grid already ran it, same seed and budget
                self._reuse(run, best)
            else:
                self._counted(run, bundle)
        for optimizer in self.optimizers:
            run = SweepRun("optimizer", optimizer, {"learning_rate": best_rate, "optimizer": optimizer})
            if optimizer == self.cfg.optimizer:
                self._reuse(run, best)
            else:
                self._counted(run, bundle)
        state = {**self.plan_file(), "best_rate": best_rate, "range_test": finder,
                 "objective": self.domain.objective, "direction": self.domain.direction,
                 "data": bundle.description, "wall_time_s": time.perf_counter() - self._started}
        write_json(self.dir / "sweep.json", state)
        return state

    def _reuse(self, run: SweepRun, summary: dict[str, Any]) -> None:
        self.summaries[run.name] = summary
        self._progress(run, summary, reused=True)

    def _counted(self, run: SweepRun, bundle) -> dict[str, Any]:
        before = self._done
        finished = finished_summary(self.dir / run.name) is not None
        summary = self._run(run, bundle)
        if not finished and self._done > before:
            self._fresh += 1
        self.summaries[run.name] = summary
        return summary
