"""Hyperparameter search with Keras Tuner, on the one training path: the search driver.

Every trial is an ordinary `run_training` run; Keras Tuner only chooses the values. The
parts: the space (common/search_space.py), the oracles and tuner (common/tuners.py), folds
(common/folds.py), HParams (common/search_hparams.py), records and tables
(common/trial_store.py). Only these modules import `keras_tuner`.

Layout of `<output>/<domain>/tuning/<name>/`:
    search.json          what the search is: tuner, objective, space, fixed flags, budget
    keras_tuner/         Keras Tuner's own state (oracle.json, trial_*/trial.json)
    trials/trial_<id>[-fold<k>]/   one run directory per trial (and fold)
    results/trial_<id>.json        each finished trial: values, status, score, time
    events.jsonl         one line per trial start and end (who ran what, and when)
    best.json            the winner, and the config overrides that retrain it
    compute.json, compute.txt, compute_anytime.png   epochs and time spent, anytime curve
    pbt.json, pbt/member-<m>/round-<r>/, pbt_schedules.png   PBT's members (common/pbt.py)
    trials.txt, trials.csv         the table of trials
    events.out.tfevents.*          TensorBoard HParams experiment (hparams_config)

Re-running the same command resumes: Keras Tuner reloads its oracle, finished trials are
not run again, and a trial killed half-way continues from its last completed epoch.
Diverged trials score the worst possible value (-inf when maximising, +inf when
minimising) and the search goes on.
"""


from __future__ import annotations

import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import keras_tuner

from common import pbt as pbt_mod
from common.domain import Domain
from common.errors import UserError
from common.folds import check_foldable, fold_bundles
from common.pruning import PruningCallback, check_rule
from common.resumable import run_or_resume
from common.resume import BACKUP_DIR, completed_epochs
from common.runs import read_json, write_json
from common.search_hparams import write_hparams_config, write_trial_hparams
from common.search_space import (
    SCHEDULE_SPACE,
    declare_space,
    declare_trial,
    default_search_space,
    make_config,
    parse_space_overrides,
)
from common.trial_store import TrialStore, config_overrides_from_best, mean_curve_and_best_epoch
from common.tuners import (
    TUNERS,
    SearchAbort,
    _BayesianOracle,
    hyperband_trial_count,
    make_tuner,
    process_role,
)

# Config fields that change how a model trains but not the data it sees: trials that
# differ only in these share one loaded DataBundle.
TRAINING_ONLY_FIELDS = frozenset({
    "learning_rate", "optimizer", "momentum", "weight_decay", "epsilon", "clipnorm",
    "weight_averaging", "schedule", "warmup_epochs", "schedule_args", "epochs",
    "steps_per_epoch",
    "early_stopping", "divergence_factor", "log_lr_every", "monitor_every", "output",
    "run_name", "resume", "verbose", "deterministic",
})
# Left out of `--from-best`: where the search ran and how much it was allowed to train.


def worst_score(direction: str) -> float:
    return -math.inf if direction == "max" else math.inf


# -- the search -----------------------------------------------------------------------
@dataclass
class SearchResult:
    search_dir: Path
    best: dict[str, Any] | None
    records: list[dict[str, Any]] = field(default_factory=list)


def _json_normal(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


class Search:
    """One search: its definition, its trials and its results.

    Args:
        domain: the Domain (any Domain object; the CLI finds them by name).
        fixed: config values given on the command line, kept for every trial.
        tuner: one of random, grid, bayesian, hyperband.
        name: the search's folder under `<output>/<domain>/tuning/`.
        max_trials: trials at most (Hyperband: a cap on its brackets, None for all).
        max_epochs: epochs per trial (Hyperband: the longest trial); None: the config's.
        folds: score each trial by K-fold cross-validation of the training split.
        space: user overrides of bounds and choices (see `parse_space_overrides`).
        smoke: start from the domain's tiny test preset.
        factor: Hyperband's reduction factor.
        lr_range_test: search the rate a decade either side of the LR range test's
            suggestion (unless `space` sets learning_rate).
        announce: print one line per finished trial and the table at the end.
        population, ready_epochs, rounds: PBT's members, epochs per round and rounds
            (default max_epochs // ready_epochs); see common/pbt.py.
    """

    def __init__(self, domain: Domain, *, fixed: dict[str, Any] | None = None,
                 tuner: str = "random", name: str | None = None,
                 max_trials: int | None = 10, max_epochs: int | None = None,
                 folds: int = 1, space: dict | None = None, smoke: bool = False,
                 factor: int = 3, lr_range_test: bool = False, announce: bool = True,
                 prune: str | None = None, population: int | None = None,
                 ready_epochs: int | None = None, rounds: int | None = None):
        if tuner not in TUNERS:
            raise UserError(f"unknown tuner {tuner!r}. Expected one of: {', '.join(TUNERS)}")
        if max_trials is not None and max_trials < 1:
            raise UserError(f"--max-trials must be >= 1. Received: {max_trials}")
        if folds < 1:
            raise UserError(f"--folds must be >= 1. Received: {folds}")
        if factor < 2:
            raise UserError(f"--factor must be >= 2. Received: {factor}")
        if prune is not None:
            check_rule(prune)
            if tuner == "hyperband" or folds > 1:
                raise UserError(f"--prune {prune} works with random, grid and bayesian searches "
                                "without --folds; drop --prune or choose another --tuner")
        if tuner == "pbt" and (prune is not None or folds > 1):
            raise UserError("--tuner pbt takes neither --prune nor --folds: its rounds already "
                            "stop weak members; drop them")
        if tuner != "pbt" and (population, ready_epochs, rounds) != (None, None, None):
            raise UserError("--population, --ready-epochs and --rounds work with --tuner pbt "
                            f"only. Received: --tuner {tuner}")
        self.prune = prune
        self._pruner = None  # the last trial's pruning callback
        self.domain = domain
        self.fixed = dict(fixed or {})
        self.fixed.setdefault("verbose", 0)
        self.tuner_kind = tuner
        self.max_trials = max_trials
        self.folds = folds
        self.smoke = smoke
        self.factor = factor
        self.announce = announce
        self.space_overrides = parse_space_overrides(space or {})
        try:
            self.base_cfg = make_config(domain, self.fixed, smoke)
        except ValueError as error:
            raise UserError(str(error)) from None
        check_foldable(domain, self.base_cfg, folds)
        self.max_epochs = max_epochs or self.base_cfg.epochs
        if self.max_epochs < 1:
            raise UserError(f"--max-epochs must be >= 1. Received: {max_epochs}")
        self.pbt = None
        if tuner == "pbt":
            size, ready, count = pbt_mod.check_pbt_options(population, ready_epochs, rounds,
                                                           self.max_epochs)
            self.pbt = {"population": size, "ready_epochs": ready, "rounds": count}
            self.max_epochs = ready * count  # each member's whole budget
            self.max_trials = size * count
        self.name = name or tuner
        if os.sep in self.name or self.name in (".", ".."):
            raise UserError(f"--name must be a plain folder name. Received: {self.name!r}")
        self.dir = Path(self.base_cfg.output) / domain.name / "tuning" / self.name
        if lr_range_test and "learning_rate" not in self.space_overrides:
            self.space_overrides["learning_rate"] = self._range_test_bounds()
        self.space = self._declare_space()
        if self.pbt is not None:
            self._fit_space_to_pbt()
        self._bundles: dict[str, Any] = {}
        self.store = TrialStore(self.dir, domain, self.base_cfg, self.planned_trials(),
                                announce)
        self._oracle = None  # the running tuner's, for the progress line

    # -- definition ----------------------------------------------------------------
    def declare(self, hp) -> dict[str, Any]:
        return declare_trial(self.domain, self.base_cfg, self.space_overrides, hp)

    def _declare_space(self) -> keras_tuner.HyperParameters:
        return declare_space(self.domain, self.base_cfg, self.fixed, self.space_overrides,
                             self.smoke)

    def _fit_space_to_pbt(self) -> None:
        """PBT trains each round at a constant rate and perturbs it: the space must have
        the rate, and a schedule choice becomes constant."""
        names = {item.name for item in self.space.space}
        if "learning_rate" not in names:
            raise UserError("--tuner pbt perturbs learning_rate, which this search space "
                            "does not have; give it bounds with --space")
        if "schedule" in names:
            self.space_overrides["schedule"] = {"values": ["constant"]}
            self.space = self._declare_space()

    def _range_test_bounds(self) -> dict[str, float]:
        """Rate bounds a decade either side of the range test's suggestion. The test runs
        once; a resumed search reads it back, so its space stays the same."""
        stored = self.dir / "lr-find" / "range_test.json"
        if stored.exists():
            suggestion = float(read_json(stored)["suggestion"])
        elif (self.dir / "search.json").exists():
            raise UserError(f"{self.dir}: this search was started without --lr-range-test. "
                            "Re-run it with the same options, or give a new --name.")
        else:
            from common.lr_finder import find_learning_rate

            suggestion = find_learning_rate(self.domain, self.base_cfg,
                                            out_dir=self.dir / "lr-find").suggestion
            if self.announce:
                print(f"range test suggests {suggestion:.3g}: searching the rate in "
                      f"[{suggestion / 10:.3g}, {suggestion * 10:.3g}]", flush=True)
        return {"min": suggestion / 10, "max": suggestion * 10}

    def definition(self) -> dict[str, Any]:
        """What must match for a re-run to continue this search (max_trials may grow)."""
        fixed = {k: v for k, v in self.fixed.items() if k not in ("verbose", "output")}
        return _json_normal({
            "domain": self.domain.name,
            "tuner": self.tuner_kind,
            "objective": self.domain.objective,
            "direction": self.domain.direction,
            "space": self.space.get_config()["space"],
            "fixed": fixed,
            "smoke": self.smoke,
            "max_epochs": self.max_epochs,
            "folds": self.folds,
            "factor": self.factor if self.tuner_kind == "hyperband" else None,
            "pbt": self.pbt,
            "prune": self.prune,
        })

    def check_definition(self, role: str) -> None:
        """A resumed search must be the same search; the stored one is never touched."""
        path = self.dir / "search.json"
        wanted = self.definition()
        if path.exists():
            stored = read_json(path)
            changed = [k for k in wanted if stored.get(k) != wanted[k]]
            if changed:
                detail = "; ".join(_difference(k, stored.get(k), wanted[k]) for k in changed)
                raise UserError(
                    f"{path}: this search was started with another definition ({detail}). "
                    "Re-run it with the same options, or give a new --name."
                )
        elif (self.dir / "keras_tuner" / "oracle.json").exists():
            raise UserError(f"{self.dir}: Keras Tuner state without search.json; give a new "
                            "--name or remove that folder.")

    def record_definition(self) -> None:
        """search.json, once the search is known to start (checked, data loaded)."""
        path = self.dir / "search.json"
        if not path.exists():
            write_json(path, {**self.definition(),
                              "created": time.strftime("%Y-%m-%d %H:%M:%S")})

    def planned_trials(self) -> int | None:
        if self.pbt is not None:
            return self.pbt["population"] * self.pbt["rounds"]
        if self.tuner_kind == "hyperband":
            count = hyperband_trial_count(self.max_epochs, self.factor)
            return min(count, self.max_trials) if self.max_trials else count
        return self.max_trials

    # -- trials ----------------------------------------------------------------------
    def trial_values(self, trial) -> tuple[dict[str, Any], dict[str, Any]]:
        """(config overrides the trial searched, its hyperparameters for HParams)."""
        hp = trial.hyperparameters
        overrides = self.declare(hp)
        epochs = int(hp.values.get("tuner/epochs", self.max_epochs))
        shown = {k: v for k, v in hp.values.items()
                 if not k.startswith(("tuner/", "pbt/")) and hp.is_active(k)}
        if self.pbt is not None:  # one round at the member's constant rate
            epochs = self.pbt["ready_epochs"]
            overrides.update({"learning_rate": float(hp.values["learning_rate"]),
                              "schedule": "constant", "schedule_args": {},
                              "warmup_epochs": 0.0, "early_stopping": 0})
            shown["learning_rate"] = overrides["learning_rate"]
        shown["epochs"] = epochs
        return {**overrides, "epochs": epochs}, shown

    def _bundle(self, cfg, fold: int | None):
        key = json.dumps({k: v for k, v in cfg.to_dict().items()
                          if k not in TRAINING_ONLY_FIELDS}, sort_keys=True, default=str)
        if key not in self._bundles:
            self._bundles.clear()  # one data set in memory at a time
            bundle = self.domain.load_data(cfg)
            folds = (fold_bundles(bundle, self.folds, cfg.batch_size, cfg.seed)
                     if self.folds > 1 else [bundle])
            self._bundles[key] = folds
        return self._bundles[key][fold or 0]

    def _run_one(self, cfg, run_name: str, fold: int | None,
                 parent: str = "") -> dict[str, Any]:
        wanted = cfg.to_dict()
        training = {}
        run_dir = self.dir / "trials" / run_name
        if parent and not completed_epochs(run_dir / BACKUP_DIR):  # else resumed from its own
            training["extra_callbacks"] = [pbt_mod.StartFromCheckpoint(
                pbt_mod.checkpoint_path(self.dir, parent), cfg.learning_rate)]
        self._pruner = None
        if self.prune is not None and self._oracle is not None:
            oracle = self._oracle if hasattr(self._oracle, "trials") else _ChiefTrials(
                self._oracle)
            self._pruner = PruningCallback(
                oracle, run_name.removeprefix("trial_"), self.domain.objective,
                self.domain.direction, rule=self.prune, max_epochs=cfg.epochs)
            training["extra_callbacks"] = [self._pruner]
        summary, _ = run_or_resume(self.domain, cfg, self.dir / "trials", run_name,
                                   bundle=self._bundle(cfg, fold),
                                   same_config=lambda stored: _same_config(stored, wanted),
                                   **training)
        if summary["status"] == "interrupted":
            raise KeyboardInterrupt
        return summary

    def run_trial(self, trial) -> Any:
        trial_id = trial.trial_id
        started = time.perf_counter()
        self.store.log({"event": "start", "trial": trial_id})
        overrides, shown = self.trial_values(trial)
        record = {"trial": trial_id, "hyperparameters": shown, "overrides": overrides,
                  "tuner_id": os.environ.get("KERASTUNER_TUNER_ID", "tuner0")}
        if self.pbt is not None:
            record["pbt"] = {k.removeprefix("pbt/"): v for k, v in
                             trial.hyperparameters.values.items() if k.startswith("pbt/")}
        try:
            cfg = make_config(self.domain, {**self.fixed, **overrides}, self.smoke)
        except ValueError as error:
            self.store.finish(record, "failed", None, started, message=str(error),
                              oracle=self._oracle)
            raise keras_tuner.errors.FailedTrialError(str(error)) from None
        summaries = []
        for fold in range(self.folds) if self.folds > 1 else [None]:
            run_name = f"trial_{trial_id}" + (f"-fold{fold + 1}" if fold is not None else "")
            try:
                summary = self._run_one(cfg, run_name, fold,
                                        trial.hyperparameters.values.get(pbt_mod.PARENT, ""))
                if self.pbt is not None and summary["status"] == "completed":
                    values = trial.hyperparameters.values
                    pbt_mod.keep_checkpoint(Path(summary["run_dir"]), self.dir,
                                            int(values[pbt_mod.MEMBER]),
                                            int(values[pbt_mod.ROUND]))
            except Exception as error:  # recorded; Keras Tuner counts it as a failed trial
                message = str(error) if isinstance(error, UserError) else (
                    f"{type(error).__name__}: {error}")
                self.store.finish(record, "failed", None, started, message=message,
                                  oracle=self._oracle)
                raise keras_tuner.errors.FailedTrialError(message) from error
            summaries.append(summary)
            if summary["status"] != "completed":
                break
        record["run_dirs"] = [s["run_dir"] for s in summaries]
        objective, direction = self.domain.objective, self.domain.direction
        if any(s["status"] == "diverged" for s in summaries):
            score = worst_score(direction)
            reason = next(s.get("divergence", {}).get("reason", "") for s in summaries
                          if s["status"] == "diverged")
            self.store.finish(record, "diverged", score, started, message=reason,
                              oracle=self._oracle)
            for s in summaries:
                write_trial_hparams(Path(s["run_dir"]), {**shown, "status": "diverged"},
                                    f"trial_{trial_id}", score)
            return {objective: score}
        curves = [s.get("history", {}).get(objective) for s in summaries]
        if not all(curves):
            raise SearchAbort(f"the objective {objective} was not logged (history has "
                              f"{', '.join(summaries[0].get('history', {}))}); the data needs "
                              "a validation split.")
        mean_curve, best_epoch = mean_curve_and_best_epoch(curves, direction)
        if self.pbt is not None:  # members are ranked on the weights they hand on
            best_epoch = len(mean_curve) - 1
        score = mean_curve[best_epoch]
        record["best_epoch"] = best_epoch + 1
        if len(curves) > 1:
            record["fold_scores"] = [c[best_epoch] for c in curves]
            record["score_std"] = statistics.stdev(record["fold_scores"])
        status = "completed"
        if self._pruner is not None and self._pruner.pruned_epoch is not None:
            status = "pruned"
            record["pruned_epoch"] = self._pruner.pruned_epoch
        record["epochs_run"] = len(mean_curve)
        self.store.finish(record, status, score, started, oracle=self._oracle)
        for s, curve in zip(summaries, curves, strict=True):
            write_trial_hparams(Path(s["run_dir"]), {**shown, "status": status},
                                f"trial_{trial_id}", curve[best_epoch])
        if self.pbt is not None:
            return {objective: score}
        # Keras Tuner reads the per-epoch values from a History and keeps the best epoch.
        history = keras.callbacks.History()
        history.history = {objective: mean_curve}
        return history

    # -- driver --------------------------------------------------------------------
    def run(self) -> SearchResult:
        role = process_role()
        self.check_definition(role)
        if role != "chief":
            # Bad data fails now, before search.json, events or Keras Tuner state exist, so
            # that a rerun with the data fixed is the same, new search.
            self._bundle(self.base_cfg.replace(epochs=self.max_epochs), 0)
        if role != "worker":
            self.record_definition()
        tuner = make_tuner(self.tuner_kind, self.run_trial, space=self.space,
                           directory=self.dir, project_name="keras_tuner",
                           objective=self.domain.objective, direction=self.domain.direction,
                           max_trials=self.max_trials, seed=self.base_cfg.seed,
                           max_epochs=self.max_epochs, factor=self.factor,
                           pbt=self._oracle_options())
        self._oracle = tuner.oracle
        if role != "worker" and not list(self.dir.glob("events.out.tfevents.*")):
            write_hparams_config(self.dir, self.space, self.domain.objective, self.max_epochs)
        if self.announce:
            done = len(self.store.records())
            print(f"search directory: {self.dir} ({self.tuner_kind}, "
                  f"{self.store.planned or 'all'} trials, {done} done before; role {role})",
                  flush=True)
        try:
            tuner.search(verbose=0)
        except SearchAbort as error:
            raise UserError(str(error)) from None
        except RuntimeError as error:
            if "consecutive failures" not in str(error):
                raise
            last = (str(error).strip().splitlines() or [""])[-1]
            raise UserError(f"search stopped: {error.args[0].splitlines()[0]} Last error: "
                            f"{last}") from None
        if role == "worker":
            best = self.store.best_of_records()
        else:
            best = self.store.write_results(tuner.oracle, {
                "tuner": self.tuner_kind, "max_epochs": self.max_epochs,
                "fixed": self.fixed, "smoke": self.smoke, "prune": self.prune})
            if self.pbt is not None:
                best = self._record_population(tuner.oracle, best)
        return SearchResult(self.dir, best, self.store.records())

    def _oracle_options(self) -> dict[str, Any] | None:
        if self.pbt is None:
            return None
        return {"population": self.pbt["population"], "rounds": self.pbt["rounds"]}

    def _record_population(self, oracle, best: dict[str, Any] | None) -> dict[str, Any] | None:
        """pbt.json, its plot, and best.json retraining the winner's rate schedule."""
        from common.search_compute import plot_population_schedules

        record = oracle.write_record()
        plot_population_schedules(self.dir, record, self.pbt["ready_epochs"])
        if best is None or not record or not record["winner"]:
            return best
        replay = pbt_mod.replay_overrides(record["winner"]["rates"], self.pbt["ready_epochs"])
        best["overrides"] = {**best["overrides"], **replay}
        best["pbt"] = {**self.pbt, "winner": record["winner"]}
        write_json(self.dir / "best.json", best)
        return best


class _ChiefTrials:
    """A worker's view of the chief's trials for pruning: Keras Tuner's OracleClient has no
    `trials`, but its get_best_trials returns every trial (completed ones first), each with
    its per-epoch metrics."""

    ALL = 2**31 - 1

    def __init__(self, client):
        self._client = client

    @property
    def trials(self) -> dict[str, Any]:
        return {t.trial_id: t for t in self._client.get_best_trials(self.ALL)}

    def update_trial(self, trial_id, metrics, step=0):
        return self._client.update_trial(trial_id, metrics, step=step)


def _difference(key: str, stored: Any, wanted: Any) -> str:
    if key == "space":
        old = {s["config"]["name"]: s for s in stored or []}
        new = {s["config"]["name"]: s for s in wanted or []}
        names = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))
        return f"space differs in {', '.join(names)}"
    if isinstance(stored, dict) and isinstance(wanted, dict):
        names = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        return f"{key} differs in {', '.join(names)}"
    return f"{key} {stored!r} -> {wanted!r}"


def _same_config(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    ignore = {"run_name", "resume", "learning_rate", "requested_learning_rate"}
    a = {k: v for k, v in stored.items() if k not in ignore}
    b = {k: v for k, v in wanted.items() if k not in ignore}
    return _json_normal(a) == _json_normal(b) and (
        _json_normal(stored.get("requested_learning_rate", stored.get("learning_rate")))
        == _json_normal(wanted.get("learning_rate")))


def run_search(domain: Domain, **kwargs) -> SearchResult:
    """Run (or resume) a search; keyword arguments are those of `Search`."""
    return Search(domain, **kwargs).run()


__all__ = ["SCHEDULE_SPACE", "TUNERS", "Search", "SearchResult", "_BayesianOracle",
           "config_overrides_from_best", "default_search_space", "fold_bundles",
           "hyperband_trial_count", "make_tuner", "parse_space_overrides", "run_search"]
