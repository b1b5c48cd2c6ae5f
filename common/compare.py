"""`lrsuite compare DOMAIN --preset rate-free`: does a rate-free method remove the tuning?

Trains, at equal steps (same epochs and batch size) and on every seed, the domain's
default config, the tuned best rate of a sweep, Schedule-Free AdamW at its default rate,
Prodigy and D-Adaptation Adam at lr=1, DoG, and the WSD schedule at the default rate.
Early stopping is off, so every point runs its whole budget. Each run is one ordinary
`run_training` run that also records its seconds per step (`StepTimer`).

Layout of `<output>/<domain>/compare/<name>/`:
    plan.json                 the plan: base config, seeds, each point's overrides, tuned source
    <point>/seed-<s>/         one run per point and seed (step_times.json beside summary.json)
    compare.json, report.md, report.html, plots/   (common.compare_report)

Re-running the same command resumes like a sweep: finished runs are read back, an
interrupted one continues, more seeds run only the new ones.
"""

from __future__ import annotations

import inspect
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from common.errors import UserError
from common.resumable import run_or_resume
from common.runs import read_json, write_json
from common.schedule_registry import get_spec

PRESETS = ("rate-free",)
RATE_FREE_OPTIMIZERS = ("prodigy", "dadapt_adam", "dog")  # estimate the rate: lr=1 by design
STEP_TIMES_FILE = "step_times.json"
PLAN_FILE = "plan.json"
STEP_TIMES_METHOD = ("[step, seconds] from the last batch-begin to the last batch-end hook; "
                     "the first step of each fit (tracing) left out")
PLAN_IGNORES = frozenset({"output", "run_name", "resume", "verbose", "seed"})


def schedule_free_default_rate() -> float:
    """Schedule-Free AdamW's own default rate (the authors' 0.0025), read from the class."""
    from common.optimizers import ScheduleFreeAdamW

    return float(inspect.signature(ScheduleFreeAdamW).parameters["learning_rate"].default)


@dataclass(frozen=True)
class ComparePoint:
    name: str
    overrides: dict[str, Any]
    setup: str  # one line for the report: what this point trains with
    same_as: str | None = None  # a point whose runs this one reuses (tuned = default)
    reason: str = ""


# -- the tuned rate ----------------------------------------------------------------------
def finished_sweep_state(sweep_dir: Path, domain_name: str) -> dict[str, Any]:
    """The sweep.json of a finished sweep of `domain_name`, or a UserError saying why not."""
    path = Path(sweep_dir) / "sweep.json"
    if not path.is_file():
        raise UserError(f"--from-sweep {sweep_dir}: no sweep.json there; pass a sweep folder "
                        f"(<output>/{domain_name}/sweeps/<name>).")
    state = read_json(path)
    if state.get("domain") != domain_name:
        raise UserError(f"--from-sweep {sweep_dir}: a sweep of {state.get('domain')!r}, not "
                        f"{domain_name!r}; pass a sweep of this domain.")
    if not isinstance(state.get("best_rate"), (int, float)):
        raise UserError(f"--from-sweep {sweep_dir}: the sweep has not finished (no best rate "
                        "yet); re-run its sweep command to finish it first.")
    return state


def newest_sweep(output: Path, domain_name: str) -> Path | None:
    """The newest finished sweep of the domain under `output`, or None."""
    folder = Path(output) / domain_name / "sweeps"
    finished = []
    for path in folder.glob("*/sweep.json") if folder.is_dir() else []:
        try:
            state = read_json(path)
        except UserError:  # a sweep being written or broken is not a source
            continue
        if isinstance(state.get("best_rate"), (int, float)):
            finished.append(path)
    return max(finished, key=lambda p: p.stat().st_mtime).parent if finished else None


def tuned_source(sweep_dir: Path | None, domain_name: str) -> dict[str, Any] | None:
    """What the tuned point takes from its sweep: the best constant rate with the sweep's
    optimizer and warmup (the grid's setting), or None without a sweep."""
    if sweep_dir is None:
        return None
    state = finished_sweep_state(sweep_dir, domain_name)
    base = state.get("base_config", {})
    return {"sweep": str(sweep_dir), "best_rate": float(state["best_rate"]),
            "optimizer": base.get("optimizer"), "warmup_epochs": base.get("warmup_epochs", 0.0),
            "objective": state.get("objective")}


# -- the points ----------------------------------------------------------------------------
def _words(cfg) -> str:
    warmup = f", warmup {cfg.warmup_epochs:g} epochs" if cfg.warmup_epochs else ""
    return f"{cfg.optimizer}, {cfg.schedule}, lr {cfg.learning_rate:g}{warmup}"


def rate_free_points(cfg, tuned: dict[str, Any] | None) -> list[ComparePoint]:
    """The rate-free preset. Schedule-free replaces the schedule (constant) but keeps the
    default's warmup, which its averaging weights (lr_max ** 2) discount as the authors
    do; Prodigy, D-Adaptation and DoG estimate the step, so lr=1, constant, no warmup."""
    constant = {"schedule": "constant", "schedule_args": {}}
    points = [ComparePoint("default", {}, f"the domain default ({_words(cfg)})")]
    if tuned is None:
        points.append(ComparePoint("tuned", {}, "", same_as="default",
                                   reason="tuned = default (no sweep found)"))
    else:
        overrides = {**constant, "learning_rate": tuned["best_rate"],
                     "optimizer": tuned["optimizer"] or cfg.optimizer,
                     "warmup_epochs": float(tuned["warmup_epochs"] or 0.0)}
        tuned_cfg = cfg.replace(**overrides)
        if tuned_cfg == cfg:
            points.append(ComparePoint("tuned", {}, "", same_as="default",
                                       reason=f"tuned = default (the best rate of "
                                              f"{tuned['sweep']} is the default config)"))
        else:
            points.append(ComparePoint("tuned", overrides, f"best constant rate of sweep "
                                       f"{tuned['sweep']} ({_words(tuned_cfg)})"))
    sf = {**constant, "optimizer": "schedule_free_adamw",
          "learning_rate": schedule_free_default_rate()}
    points.append(ComparePoint("schedule_free_adamw", sf,
                               f"Schedule-Free AdamW, its default lr {sf['learning_rate']:g}, "
                               "no schedule" + (f", warmup {cfg.warmup_epochs:g} epochs"
                                                if cfg.warmup_epochs else "")))
    for name in RATE_FREE_OPTIMIZERS:
        points.append(ComparePoint(name, {**constant, "optimizer": name, "learning_rate": 1.0,
                                          "warmup_epochs": 0.0},
                                   f"{name}, lr 1 (the rate it estimates is multiplied by it), "
                                   "constant"))
    wsd = {p.name: p.default for p in get_spec("wsd").params}
    points.append(ComparePoint("wsd", {"schedule": "wsd", "schedule_args": {}},
                               f"warmup-stable-decay at the default rate ({cfg.optimizer}, "
                               f"lr {cfg.learning_rate:g}, cool-down over the last "
                               f"{wsd['decay_fraction']:.0%}, {wsd['shape']})"))
    return points


# -- seconds per step ------------------------------------------------------------------------
class StepTimer(keras.callbacks.Callback):
    """Wall seconds of each training step, from the last batch-begin hook to the last
    batch-end hook (the compiled step and the run's per-step callbacks; validation and
    epoch ends are outside). The first step of each fit traces the step and is left out.

    Written to `path` at every epoch end; a resumed run keeps the steps before
    `first_step` (its completed epochs) and times the rest."""

    def __init__(self, path: Path, first_step: int = 0):
        super().__init__()
        self.path = Path(path)
        self.first_step = first_step
        self.records: list[list[float]] = []  # [step, seconds]
        self._step = first_step
        self._started = 0.0
        self._tracing = True

    def on_train_begin(self, logs=None):
        if self.path.exists():
            kept = read_json(self.path).get("steps", [])
            self.records = [r for r in kept if r[0] < self.first_step]
        self._step = self.first_step
        self._tracing = True

    def on_train_batch_begin(self, batch, logs=None):
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        seconds = time.perf_counter() - self._started
        if not self._tracing:
            self.records.append([self._step, seconds])
        self._tracing = False
        self._step += 1

    def on_epoch_end(self, epoch, logs=None):
        self._write()

    def on_train_end(self, logs=None):
        self._write()

    def _write(self) -> None:
        write_json(self.path, {"steps": self.records, "method": STEP_TIMES_METHOD})


def seconds_per_step(run_dir: Path, summary: dict[str, Any]) -> tuple[float | None, str]:
    """(the run's median seconds per step, where it comes from): its step_times.json, else
    its wall time over the steps of its last fit (that includes tracing and validation)."""
    path = Path(run_dir) / STEP_TIMES_FILE
    if path.exists():
        seconds = [float(r[1]) for r in read_json(path).get("steps", [])]
        if seconds:
            return statistics.median(seconds), "step_times"
    rate = summary.get("examples_per_second")
    if isinstance(rate, (int, float)) and rate > 0:
        return float(summary["batch_size"]) / float(rate), "wall_time"
    return None, "none"


# -- running -------------------------------------------------------------------------------
@dataclass
class Compare:
    """Plans, runs (or resumes) one comparison; the report is common.compare_report's."""

    domain: Any
    cfg: Any
    dir: Path
    points: list[ComparePoint]
    seeds: list[int]
    preset: str = "rate-free"
    tuned: dict[str, Any] | None = None
    announce: bool = True
    summaries: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    def point_configs(self) -> dict[str, Any]:
        """Each trained point's config (seed aside); a value the config rejects is a
        UserError naming the point."""
        out = {}
        for point in self.points:
            if point.same_as:
                continue
            try:
                out[point.name] = self.cfg.replace(**point.overrides)
            except ValueError as error:
                raise UserError(f"compare point {point.name}: {error}") from None
        return out

    def plan_file(self) -> dict[str, Any]:
        return {"domain": self.domain.name, "preset": self.preset,
                "base_config": self.cfg.to_dict(), "seeds": self.seeds, "tuned": self.tuned,
                "objective": self.domain.objective, "direction": self.domain.direction,
                "points": [{"name": p.name, "overrides": p.overrides, "setup": p.setup,
                            "same_as": p.same_as, "reason": p.reason} for p in self.points]}

    def check_plan(self) -> None:
        """A rerun must be the same comparison; it may only add seeds."""
        path = self.dir / PLAN_FILE
        if not path.exists():
            return
        stored = read_json(path)
        wanted = json.loads(json.dumps(self.plan_file()))
        changed = [k for k in ("preset", "points") if stored.get(k) != wanted[k]]
        if any(seed not in wanted["seeds"] for seed in stored.get("seeds", [])):
            changed.append(f"seeds (ran {stored['seeds']}; a rerun may only add seeds)")
        old, new = stored.get("base_config", {}), wanted["base_config"]
        changed += sorted(k for k in set(old) | set(new)
                          if k not in PLAN_IGNORES and old.get(k) != new.get(k))
        if changed:
            raise UserError(f"{path}: this comparison was started with other settings "
                            f"({', '.join(changed)} differ). Re-run it with the same flags, "
                            "or give a new --name.")

    def check_schedules(self, configs: dict[str, Any], bundle) -> None:
        """Every point's schedule fits the budget, before anything is written."""
        from common.training import plan_schedule, steps_per_epoch_for

        steps = steps_per_epoch_for(self.cfg, bundle)
        for name, cfg in configs.items():
            try:
                plan_schedule(cfg, cfg.learning_rate, steps)
            except UserError as error:
                raise UserError(f"compare point {name}: {error}") from None

    def run(self) -> dict[str, dict[int, dict[str, Any]]]:
        from common.resume import BACKUP_DIR, completed_epochs
        from common.training import steps_per_epoch_for

        configs = self.point_configs()
        self.check_plan()
        cache = {self.seeds[0]: self.domain.load_data(self.cfg.replace(seed=self.seeds[0]))}
        self.check_schedules(configs, cache[self.seeds[0]])
        write_json(self.dir / PLAN_FILE, self.plan_file())  # seeds may have grown
        total, done, started = len(configs) * len(self.seeds), 0, time.perf_counter()
        for seed in self.seeds:  # seed by seed: a comparison cut short holds whole seeds
            if seed not in cache:
                cache[seed] = self.domain.load_data(self.cfg.replace(seed=seed))
            bundle = cache[seed]
            steps = steps_per_epoch_for(self.cfg, bundle)
            for name, cfg in configs.items():
                run_dir = self.dir / name / f"seed-{seed}"
                resumable = (run_dir / "config.json").exists()
                first = completed_epochs(run_dir / BACKUP_DIR) * steps if resumable else 0
                timer = StepTimer(run_dir / STEP_TIMES_FILE, first_step=first)
                summary, reused = run_or_resume(
                    self.domain, cfg.replace(seed=seed), self.dir / name, f"seed-{seed}",
                    bundle=bundle, save_model=True, extra_callbacks=[timer])
                self.summaries.setdefault(name, {})[seed] = summary
                done += 1
                self._progress(done, total, name, seed, summary, reused, started)
        return self.summaries

    def _progress(self, done, total, name, seed, summary, reused, started) -> None:
        if not self.announce:
            return
        value = summary.get(self.domain.objective)
        shown = f"{value:.4f}" if isinstance(value, (int, float)) and math.isfinite(value) \
            else "-"
        print(f"[{done}/{total}] {name} seed {seed}: {summary.get('status')}, "
              f"{self.domain.objective}={shown}{' (done before)' if reused else ''}; "
              f"elapsed {time.perf_counter() - started:.0f} s", flush=True)
