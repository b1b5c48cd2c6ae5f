"""Learning-rate sweeps: a log-spaced grid of constant rates, then schedules and optimizers
compared at the best rate, each point on every seed. Every run is one ordinary
`run_training` run.

Layout of `<output>/<domain>/sweeps/<name>/`:
    sweep.json                  the plan: base config, seeds, rates, schedules, optimizers
    lr-find/                    the range test (its suggestion is drawn on the U-curve)
    rate-<i>-<r>/seed-<s>/      one run per rate and seed; <i> orders the folders by rate
    schedule-<s>/seed-<s>/      one run per schedule and seed, at the best rate
    optimizer-<o>/seed-<s>/     one run per optimizer and seed, at the best rate
    report.md, report.html, plots/   (common.reporting)

Every seed gives all points the same initial weights and data order, so points compare
in pairs (common.evidence). The best rate is the one with the best mean objective over
seeds. Re-running the same command resumes: finished runs are read back, an interrupted
one continues from its last completed epoch, nothing is repeated; re-running with more
seeds runs only the new ones.
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
PLAN_IGNORES = frozenset({"output", "run_name", "resume", "verbose", "seed"})


@dataclass
class SweepRun:
    group: str  # "rate", "schedule" or "optimizer"
    label: str
    overrides: dict[str, Any]
    seed: int = 0

    @property
    def point(self) -> str:
        return f"{self.group}-{self.label}"

    @property
    def name(self) -> str:
        return f"{self.point}/seed-{self.seed}"


def log_rates(low: float, high: float, count: int) -> list[float]:
    """`count` rates spaced evenly on a log axis from `low` to `high`, rounded to 2 digits."""
    if not (0 < low < high) or not all(map(math.isfinite, (low, high))):
        raise UserError(f"rate bounds must satisfy 0 < min < max. Received: min={low}, max={high}")
    if count < 2:
        raise UserError(f"a sweep needs at least 2 rates. Received: num_rates={count}")
    return [float(f"{r:.2g}") for r in np.logspace(math.log10(low), math.log10(high), count)]


def rate_label(rate: float, index: int) -> str:
    """`03-0.0032`: the index sorts the folders by rate (as text, `1e-1` sorts before
    `1e-5`), the rate is written to 3 significant digits (the grid holds 2)."""
    return f"{index:02d}-{rate:.3g}"


def objective_value(summary: dict[str, Any], objective: str) -> float | None:
    value = summary.get(objective)
    if summary.get("status") != "completed" or value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def mean_objective(summaries: list[dict[str, Any]], objective: str) -> float | None:
    """The mean objective over a point's seeds; None unless most of them completed."""
    values = [objective_value(s, objective) for s in summaries]
    values = [v for v in values if v is not None]
    if not values or len(values) * 2 <= len(summaries):
        return None
    return float(np.mean(values))


class Sweep:
    """Plans, runs (or resumes) and collects one sweep."""

    def __init__(self, domain, cfg, sweep_dir: Path, *, rates: list[float],
                 schedules: tuple[str, ...], optimizers: tuple[str, ...],
                 range_test_steps: int = 100, announce: bool = True,
                 seeds: list[int] | None = None):
        self.domain = domain
        self.cfg = cfg
        self.dir = sweep_dir
        self.rates = sorted(rates)
        self.schedules = schedules
        self.optimizers = optimizers
        self.range_test_steps = range_test_steps
        self.announce = announce
        self.seeds = list(seeds or [cfg.seed])
        self.summaries: dict[str, dict[str, Any]] = {}
        self.range_test: dict[str, Any] | None = None
        self._started = 0.0
        self._done = 0
        self._fresh = 0

    # -- plan ---------------------------------------------------------------
    def plan_file(self) -> dict[str, Any]:
        return {
            "domain": self.domain.name,
            "base_config": self.cfg.to_dict(),
            "seeds": self.seeds,
            "rates": self.rates,
            "schedules": list(self.schedules),
            "optimizers": list(self.optimizers),
        }

    def check_plan(self) -> None:
        """A resumed sweep must be the same sweep (the stored plan wins, differences
        fail); it may add seeds, which then run while the finished ones are read back."""
        path = self.dir / "sweep.json"
        if not path.exists():
            return
        stored = read_json(path)
        wanted = json.loads(json.dumps(self.plan_file()))  # tuples read back as lists
        keys = ("rates", "schedules", "optimizers")
        changed = [k for k in keys if stored.get(k) != wanted[k]]
        old_seeds = stored.get("seeds", [stored.get("base_config", {}).get("seed")])
        if any(seed not in wanted["seeds"] for seed in old_seeds):
            changed.append(f"seeds (ran {old_seeds}; a rerun may only add seeds)")
        base_changed = sorted(
            k for k in set(stored.get("base_config", {})) | set(wanted["base_config"])
            if k not in PLAN_IGNORES
            and stored["base_config"].get(k) != wanted["base_config"].get(k))
        if changed or base_changed:
            raise UserError(
                f"{path}: this sweep was started with other settings "
                f"({', '.join(changed + base_changed)} differ). Re-run it with the same flags, "
                "or give a new --name."
            )

    def total_runs(self) -> int:
        return (len(self.rates) + len(self.schedules) + len(self.optimizers)) * len(self.seeds)

    # -- run ----------------------------------------------------------------
    def _run(self, run: SweepRun, bundle) -> dict[str, Any]:
        finished = finished_summary(self.dir / run.name) is not None
        cfg = self.cfg.replace(seed=run.seed, **run.overrides)
        summary, reused = run_or_resume(self.domain, cfg, self.dir / run.point,
                                        f"seed-{run.seed}", bundle=bundle,
                                        range_test=self.range_test, save_model=True)
        if not finished and not reused:
            self._fresh += 1
        self._progress(run, summary, reused=reused)
        self.summaries[run.name] = summary
        return summary

    def _progress(self, run: SweepRun, summary: dict[str, Any], reused: bool,
                  note: str = "") -> None:
        self._done += 1
        if not self.announce:
            return
        elapsed = time.perf_counter() - self._started
        left = self.total_runs() - self._done
        eta = elapsed / self._fresh * left if self._fresh else float("nan")
        value = summary.get(self.domain.objective)
        shown = f"{value:.4f}" if isinstance(value, (int, float)) else "-"
        verdict = summary.get("diagnosis", {}).get("verdict", "?")
        print(f"[{self._done}/{self.total_runs()}] {run.point} seed {run.seed}: "
              f"{summary.get('status')}, {self.domain.objective}={shown}, {verdict}"
              f"{note or (' (done before)' if reused else '')}; elapsed {elapsed:.0f} s"
              f"{f', about {eta:.0f} s left' if math.isfinite(eta) else ''}", flush=True)

    def _bundles(self):
        """Data per seed (a seed also picks the validation split); the first is loaded
        before anything is written, so bad data leaves no plan behind."""
        cache = {self.seeds[0]: self.domain.load_data(self.cfg.replace(seed=self.seeds[0]))}

        def bundle_for(seed: int):
            if seed not in cache:
                cache[seed] = self.domain.load_data(self.cfg.replace(seed=seed))
            return cache[seed]
        return bundle_for

    def run(self) -> dict[str, Any]:
        from common.lr_finder import find_learning_rate

        self.check_plan()
        bundle_for = self._bundles()
        if not (self.dir / "sweep.json").exists():
            write_json(self.dir / "sweep.json", self.plan_file())
        self._started = time.perf_counter()
        first = self.seeds[0]
        finder = find_learning_rate(self.domain, self.cfg.replace(seed=first),
                                    bundle=bundle_for(first), out_dir=self.dir / "lr-find",
                                    num_steps=self.range_test_steps).as_summary()
        self.range_test = finder
        if self.announce:
            print(f"range test suggests {finder['suggestion']:.3g}", flush=True)

        grid: dict[float, list[dict[str, Any]]] = {}
        for seed in self.seeds:  # seed by seed: a sweep cut short holds whole seeds
            bundle = bundle_for(seed)
            for index, rate in enumerate(self.rates):
                run = SweepRun("rate", rate_label(rate, index),
                               {"learning_rate": rate, "schedule": "constant"}, seed)
                grid.setdefault(rate, []).append(self._run(run, bundle))
        scores = {rate: mean_objective(runs, self.domain.objective) for rate, runs in grid.items()}
        scored = {rate: v for rate, v in scores.items() if v is not None}
        if not scored:
            raise UserError(
                f"{self.dir}: no rate of the grid completed ({', '.join(map(str, self.rates))}); "
                "lower --max-lr or check the data."
            )
        pick = max if self.domain.direction == "max" else min
        best_rate = pick(scored, key=scored.get)
        best_index = self.rates.index(best_rate)
        for seed in self.seeds:
            bundle = bundle_for(seed)
            best = grid[best_rate][self.seeds.index(seed)]
            for schedule in self.schedules:
                run = SweepRun("schedule", schedule,
                               {"learning_rate": best_rate, "schedule": schedule}, seed)
                if schedule == "constant":  # the grid ran it: same seed, rate and budget
                    self._reuse(run, best, best_index)
                else:
                    self._run(run, bundle)
            for optimizer in self.optimizers:
                run = SweepRun("optimizer", optimizer,
                               {"learning_rate": best_rate, "optimizer": optimizer}, seed)
                if optimizer == self.cfg.optimizer:
                    self._reuse(run, best, best_index)
                else:
                    self._run(run, bundle)
        state = {**self.plan_file(), "best_rate": best_rate,
                 "best_rate_run": SweepRun("rate", rate_label(best_rate, best_index), {}).point,
                 "range_test": finder, "objective": self.domain.objective,
                 "direction": self.domain.direction, "data": bundle_for(first).description,
                 "wall_time_s": time.perf_counter() - self._started}
        write_json(self.dir / "sweep.json", state)
        from common.sweep_hparams import write_sweep_hparams

        unique = {s["run_dir"]: s for s in self.summaries.values() if s.get("run_dir")}
        write_sweep_hparams(self.dir, list(unique.values()))  # rate against metric
        return state

    def _reuse(self, run: SweepRun, summary: dict[str, Any], best_index: int) -> None:
        self.summaries[run.name] = summary
        note = f" (the grid's run rate-{rate_label(summary['learning_rate'], best_index)})"
        self._progress(run, summary, reused=True, note=note)
