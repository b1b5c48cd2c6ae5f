"""Hyperparameter search with Keras Tuner, on the one training path.

Every trial is an ordinary `run_training` run; Keras Tuner only chooses the values. This
module is the only one that imports `keras_tuner`.

Layout of `<output>/<domain>/tuning/<name>/`:
    search.json          what the search is: tuner, objective, space, fixed flags, budget
    keras_tuner/         Keras Tuner's own state (oracle.json, trial_*/trial.json)
    trials/trial_<id>[-fold<k>]/   one run directory per trial (and fold)
    results/trial_<id>.json        each finished trial: values, status, score, time
    events.jsonl         one line per trial start and end (who ran what, and when)
    best.json            the winner, and the config overrides that retrain it
    trials.txt, trials.csv         the table of trials
    events.out.tfevents.*          TensorBoard HParams experiment (hparams_config)

Re-running the same command resumes: Keras Tuner reloads its oracle, finished trials are
not run again, and a trial killed half-way continues from its last completed epoch.
Diverged trials score the worst possible value (-inf when maximising, +inf when
minimising) and the search goes on.
"""

from __future__ import annotations

import csv
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
import numpy as np
import tensorflow as tf

from common.domain import DataBundle, Domain
from common.errors import UserError
from common.resumable import run_or_resume
from common.runs import FINISHED_STATUSES, read_json, write_json

TUNERS = ("random", "grid", "bayesian", "hyperband")
# Config fields that change how a model trains but not the data it sees: trials that
# differ only in these share one loaded DataBundle.
TRAINING_ONLY_FIELDS = frozenset({
    "learning_rate", "optimizer", "momentum", "weight_decay", "epsilon", "clipnorm",
    "schedule", "warmup_epochs", "schedule_args", "epochs", "steps_per_epoch",
    "early_stopping", "divergence_factor", "log_lr_every", "monitor_every", "output",
    "run_name", "resume", "verbose", "deterministic",
})
# Left out of `--from-best`: where the search ran and how much it was allowed to train.
BUDGET_FIELDS = frozenset({"epochs", "steps_per_epoch", "output", "run_name", "resume",
                           "verbose"})
SPACE_KEYS = frozenset({"min", "max", "values", "sampling", "step"})

# Each schedule's own parameters, sampled only when that schedule is chosen:
# (parameter, low, high, sampling). Hyperparameter names are "<schedule>/<parameter>".
CYCLE_SPACE = (("base_fraction", 0.05, 0.5, "log"),)
SCHEDULE_SPACE: dict[str, tuple[tuple[str, float, float, str], ...]] = {
    "step": (("factor", 0.1, 0.7, "linear"),),
    "drops": (("factor", 0.05, 0.5, "log"),),
    "exponential": (("decay_rate", 0.5, 0.95, "linear"),),
    "inverse_time": (("decay_rate", 0.05, 2.0, "log"),),
    "polynomial": (("power", 0.5, 2.0, "linear"),),
    "cosine": (("alpha", 0.0, 0.2, "linear"),),
    "cosine_restarts": (("t_mul", 1.0, 2.0, "linear"), ("m_mul", 0.5, 1.0, "linear")),
    "triangular": CYCLE_SPACE,
    "triangular2": CYCLE_SPACE,
    "exp_range": CYCLE_SPACE,
    "cyclical_cosine": CYCLE_SPACE,
    "one_cycle": (("pct_start", 0.1, 0.5, "linear"), ("div_factor", 5.0, 100.0, "log")),
    "plateau": (("factor", 0.2, 0.7, "linear"),),
}


class SearchAbort(keras_tuner.errors.FatalError):
    """Stops the whole search (Keras Tuner re-raises FatalError instead of retrying)."""


def worst_score(direction: str) -> float:
    return -math.inf if direction == "max" else math.inf


def default_search_space(hp, cfg) -> dict:
    """For domains without their own space: the rate around the default, two schedules."""
    rate = cfg.learning_rate if isinstance(cfg.learning_rate, float) else 1e-3
    return {
        "learning_rate": hp.Float("learning_rate", rate / 100, rate * 10, sampling="log"),
        "schedule": hp.Choice("schedule", ["constant", "cosine"]),
    }


# -- the search space ---------------------------------------------------------------
def parse_space_overrides(data: Any, source: str = "--space") -> dict[str, dict]:
    """Check `{"name": {"min": .., "max": ..} | {"values": [..]}}` and return it.

    Raises:
        UserError: not a mapping, an unknown key, empty choices, inverted bounds.
    """
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a JSON object of hyperparameter names. "
                        f"Received: {type(data).__name__}")
    checked: dict[str, dict] = {}
    for name, spec in data.items():
        if not isinstance(spec, dict) or not spec:
            raise UserError(f"{source}: {name} must map to an object such as "
                            '{"min": 1e-4, "max": 1e-1} or {"values": ["adam", "sgd"]}. '
                            f"Received: {name}={spec!r}")
        unknown = sorted(set(spec) - SPACE_KEYS)
        if unknown:
            raise UserError(f"{source}: {name} has unknown key(s) {', '.join(unknown)}. "
                            f"Expected some of: {', '.join(sorted(SPACE_KEYS))}")
        if "values" in spec and set(spec) & {"min", "max", "step", "sampling"}:
            raise UserError(f"{source}: {name} takes either values or min/max, not both. "
                            f"Received: {name}={spec!r}")
        if "values" in spec:
            values = spec["values"]
            if not isinstance(values, list) or not values:
                raise UserError(f"{source}: {name} needs a non-empty list of values. "
                                f"Received: values={values!r}")
            if len({type(v) for v in values}) > 1:
                raise UserError(f"{source}: {name} values must all have one type. "
                                f"Received: values={values!r}")
        if "min" in spec or "max" in spec:
            low, high = spec.get("min"), spec.get("max")
            for label, bound in (("min", low), ("max", high)):
                if bound is not None and (isinstance(bound, bool)
                                          or not isinstance(bound, (int, float))
                                          or not math.isfinite(bound)):
                    raise UserError(f"{source}: {name} {label} must be a finite number. "
                                    f"Received: {label}={bound!r}")
            if low is not None and high is not None and not low < high:
                raise UserError(f"{source}: {name} bounds are empty or inverted: min must be "
                                f"< max. Received: min={low}, max={high}")
        if spec.get("sampling", "linear") not in ("linear", "log", "reverse_log"):
            raise UserError(f"{source}: {name} sampling must be linear, log or reverse_log. "
                            f"Received: sampling={spec['sampling']!r}")
        checked[name] = dict(spec)
    return checked


class _OverriddenSpace:
    """HyperParameters whose bounds and choices the user's `--space` may replace.

    The domain's `search_space` keeps its one readable definition; this wrapper swaps in
    the user's numbers when the domain asks for a hyperparameter by name.
    """

    def __init__(self, hp, overrides: dict[str, dict]):
        self._hp = hp
        self._overrides = overrides

    def __getattr__(self, name):
        return getattr(self._hp, name)

    def _numeric(self, method, name, min_value, max_value, step=None, sampling="linear",
                 default=None, **kwargs):
        spec = self._overrides.get(name)
        if spec is None:
            return method(name, min_value, max_value, step=step, sampling=sampling,
                          default=default, **kwargs)
        if "values" in spec:
            return self._hp.Choice(name, spec["values"], **kwargs)
        low, high = spec.get("min", min_value), spec.get("max", max_value)
        if not low < high:
            raise UserError(f"--space: {name} bounds are empty or inverted after merging "
                            f"with the domain's ({min_value}, {max_value}): min={low}, "
                            f"max={high}")
        sampling = spec.get("sampling", sampling)
        if sampling in ("log", "reverse_log") and low <= 0:
            raise UserError(f"--space: {name} with {sampling} sampling needs min > 0. "
                            f"Received: min={low}")
        return method(name, low, high, step=spec.get("step", step), sampling=sampling,
                      **kwargs)

    def Float(self, name, min_value, max_value, **kwargs):  # noqa: N802 (Keras Tuner's name)
        return self._numeric(self._hp.Float, name, min_value, max_value, **kwargs)

    def Int(self, name, min_value, max_value, **kwargs):  # noqa: N802
        return self._numeric(self._hp.Int, name, min_value, max_value, **kwargs)

    def Boolean(self, name, default=False, **kwargs):  # noqa: N802
        if name in self._overrides:
            return self.Choice(name, [False, True], **kwargs)
        return self._hp.Boolean(name, default=default, **kwargs)

    def Fixed(self, name, value, **kwargs):  # noqa: N802
        if name in self._overrides:
            return self.Choice(name, [value], **kwargs)
        return self._hp.Fixed(name, value, **kwargs)

    def Choice(self, name, values, ordered=None, default=None, **kwargs):  # noqa: N802
        spec = self._overrides.get(name)
        if spec is not None:
            if "values" not in spec:
                raise UserError(f"--space: {name} is a choice; give it "
                                '{"values": [...]}, not bounds.')
            values, default = spec["values"], None
        return self._hp.Choice(name, values, ordered=ordered, default=default, **kwargs)


def _chosen_schedules(hp) -> list[str]:
    for item in hp.space:
        if item.name == "schedule" and not item.conditions:
            return list(getattr(item, "values", None) or [getattr(item, "value", None)])
    return []


def declare_trial(domain: Domain, cfg, overrides: dict[str, dict], hp) -> dict[str, Any]:
    """Config overrides for one trial: the domain's space, then each chosen schedule's
    own parameters under `conditional_scope("schedule", [name])`."""
    proxy = _OverriddenSpace(hp, overrides)
    space = domain.search_space or default_search_space
    values = dict(space(proxy, cfg))
    schedule_args: dict[str, float] = {}
    for schedule in _chosen_schedules(hp):
        params = SCHEDULE_SPACE.get(schedule, ())
        if not params:
            continue
        with hp.conditional_scope("schedule", [schedule]):
            for param, low, high, sampling in params:
                value = proxy.Float(f"{schedule}/{param}", low, high, sampling=sampling)
                if value is not None:
                    schedule_args[param] = value
    if "schedule" in values:
        inherited = dict(cfg.schedule_args) if values["schedule"] == cfg.schedule else {}
        values["schedule_args"] = {**inherited, **schedule_args}
    return values


def make_config(domain: Domain, values: dict[str, Any], smoke: bool):
    """The domain's config (or its smoke preset) with `values` on top."""
    cls = domain.config_cls
    return cls.smoke(**values) if smoke else cls(**values)


# -- HParams for TensorBoard ----------------------------------------------------------
def _hparams_api():
    from tensorboard.plugins.hparams import api as hp_api

    return hp_api


def _hparam_domain(item, hp_api):
    if isinstance(item, keras_tuner.engine.hyperparameters.Choice):
        return hp_api.Discrete(list(item.values))
    if isinstance(item, keras_tuner.engine.hyperparameters.Boolean):
        return hp_api.Discrete([False, True])
    if isinstance(item, keras_tuner.engine.hyperparameters.Fixed):
        return hp_api.Discrete([item.value])
    if isinstance(item, keras_tuner.engine.hyperparameters.Int):
        return hp_api.IntInterval(int(item.min_value), int(item.max_value))
    return hp_api.RealInterval(float(item.min_value), float(item.max_value))


def write_hparams_config(log_dir: Path, space, objective: str) -> None:
    """The experiment at the search's root, so TensorBoard's HParams dashboard has columns."""
    hp_api = _hparams_api()
    hparams = [hp_api.HParam(item.name, _hparam_domain(item, hp_api)) for item in space.space]
    hparams += [hp_api.HParam("epochs", hp_api.IntInterval(1, 1_000_000)),
                hp_api.HParam("status", hp_api.Discrete(list(FINISHED_STATUSES)))]
    metrics = [hp_api.Metric("tuning/score", display_name=f"score ({objective})"),
               hp_api.Metric("epoch_loss", group="train", display_name="loss (train)"),
               hp_api.Metric("epoch_loss", group="validation", display_name="loss (val)")]
    if objective.startswith("val_") and objective != "val_loss":
        name = objective.removeprefix("val_")
        metrics.append(hp_api.Metric(f"epoch_{name}", group="validation",
                                     display_name=f"{name} (val)"))
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        hp_api.hparams_config(hparams=hparams, metrics=metrics)


def write_trial_hparams(run_dir: Path, values: dict[str, Any], group: str, score: float) -> None:
    """This run's hyperparameters; folds of one trial share `group`, so TensorBoard
    aggregates them into one row."""
    hp_api = _hparams_api()
    with tf.summary.create_file_writer(str(run_dir)).as_default():
        hp_api.hparams(values, trial_id=group)
        tf.summary.scalar("tuning/score", score, step=0)


# -- cross-validation -----------------------------------------------------------------
# Domains whose training pipeline cannot be folded: it yields random crops, not examples.
NOT_FOLDABLE = {
    "medical_segmentation": "its training pipeline yields random crops of the images, so a "
    "fold held out from it would not be whole validation images",
}


def check_foldable(domain: Domain, cfg, folds: int) -> None:
    if folds < 2:
        return
    if domain.name in NOT_FOLDABLE:
        raise UserError(f"--folds {folds}: {domain.name} cannot be cross-validated: "
                        f"{NOT_FOLDABLE[domain.name]}. Use --folds 1.")
    if getattr(cfg, "augment", False):
        raise UserError(f"--folds {folds}: the {domain.name} training pipeline augments at "
                        "random, which would freeze one draw into the folds. Add --no-augment "
                        "or use --folds 1.")


def fold_bundles(bundle: DataBundle, folds: int, batch_size: int, seed: int) -> list[DataBundle]:
    """K (train, validation) splits of one shuffled pass over the training pipeline.

    The pass is held in memory, so this suits training sets of up to some 100k small
    examples. Examples keep the padding of the batch they came from (padded batches,
    as in translation, are re-padded). The test split is untouched; each fold's held-out
    part replaces the validation split.
    """
    spec = bundle.train.unbatch().element_spec
    batches = bundle.train_examples // batch_size
    examples = list(bundle.train.take(batches).unbatch().as_numpy_iterator())
    if len(examples) < 2 * folds:
        raise UserError(f"--folds {folds}: only {len(examples)} training examples; use "
                        "fewer folds.")

    def dataset(indices):
        items = [examples[i] for i in indices]
        data = tf.data.Dataset.from_generator(lambda: iter(items), output_signature=spec)
        # A known size lets Keras end validation quietly instead of "ran out of data".
        return data.apply(tf.data.experimental.assert_cardinality(len(items)))

    edges = np.linspace(0, len(examples), folds + 1).astype(int)
    out = []
    for k in range(folds):
        held = np.arange(edges[k], edges[k + 1])
        keep = np.setdiff1d(np.arange(len(examples)), held)
        if len(keep) < batch_size:
            raise UserError(f"--folds {folds}: a fold leaves {len(keep)} training examples, "
                            f"fewer than batch_size {batch_size}.")
        out.append(DataBundle(
            train=dataset(keep).cache().shuffle(len(keep), seed=seed)
            .padded_batch(batch_size, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE),
            val=dataset(held).cache().padded_batch(batch_size),
            test=bundle.test,
            train_examples=len(keep),
            description=f"{bundle.description} (fold {k + 1} of {folds})",
            info=bundle.info,
        ))
    return out


# -- the search -----------------------------------------------------------------------
@dataclass
class SearchResult:
    search_dir: Path
    best: dict[str, Any] | None
    records: list[dict[str, Any]] = field(default_factory=list)


def _json_normal(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def hyperband_trial_count(max_epochs: int, factor: int) -> int:
    """How many trials one Hyperband iteration runs (mirrors HyperbandOracle's sizes)."""
    brackets, epochs = 0, max_epochs
    while epochs >= 1:
        epochs /= factor
        brackets += 1
    end0 = math.ceil(1 + math.log(max_epochs, factor))
    return sum(math.ceil(end0 / (b + 1) * factor ** (b - r))
               for b in range(brackets) for r in range(b + 1))


def _role() -> str:
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID")
               if v not in os.environ]
    if missing:
        raise UserError(f"KERASTUNER_ORACLE_IP is set but {', '.join(missing)} is not: a "
                        "distributed search needs all three variables.")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


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
    """

    def __init__(self, domain: Domain, *, fixed: dict[str, Any] | None = None,
                 tuner: str = "random", name: str | None = None,
                 max_trials: int | None = 10, max_epochs: int | None = None,
                 folds: int = 1, space: dict | None = None, smoke: bool = False,
                 factor: int = 3, lr_range_test: bool = False, announce: bool = True):
        if tuner not in TUNERS:
            raise UserError(f"unknown tuner {tuner!r}. Expected one of: {', '.join(TUNERS)}")
        if max_trials is not None and max_trials < 1:
            raise UserError(f"--max-trials must be >= 1. Received: {max_trials}")
        if folds < 1:
            raise UserError(f"--folds must be >= 1. Received: {folds}")
        if factor < 2:
            raise UserError(f"--factor must be >= 2. Received: {factor}")
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
        self.name = name or tuner
        if os.sep in self.name or self.name in (".", ".."):
            raise UserError(f"--name must be a plain folder name. Received: {self.name!r}")
        self.dir = Path(self.base_cfg.output) / domain.name / "tuning" / self.name
        if lr_range_test and "learning_rate" not in self.space_overrides:
            self.space_overrides["learning_rate"] = self._range_test_bounds()
        self.space = self._declare_space()
        self._bundles: dict[str, Any] = {}

    # -- definition ----------------------------------------------------------------
    def declare(self, hp) -> dict[str, Any]:
        return declare_trial(self.domain, self.base_cfg, self.space_overrides, hp)

    def _declare_space(self):
        hp = keras_tuner.HyperParameters()
        try:
            values = self.declare(hp)
        except ValueError as error:  # Keras Tuner's own checks of a hyperparameter
            raise UserError(f"search space: {error}") from None
        names = [item.name for item in hp.space]
        unknown = sorted(set(self.space_overrides) - set(names))
        if unknown:
            raise UserError(f"--space: no hyperparameter {', '.join(map(repr, unknown))} in "
                            f"the {self.domain.name} search space. Expected some of: "
                            f"{', '.join(names)}")
        fields = set(self.base_cfg.to_dict())
        bad = sorted(set(values) - fields)
        if bad:
            raise UserError(f"{self.domain.name} search space sets {', '.join(bad)}, which "
                            f"{type(self.base_cfg).__name__} does not have.")
        for item in hp.space:  # every choice must make a valid config on its own
            if item.name in fields and hasattr(item, "values") and not item.conditions:
                for choice in item.values:
                    values = {**self.fixed, item.name: choice}
                    if item.name == "schedule" and choice != self.base_cfg.schedule:
                        values["schedule_args"] = {}  # the fixed args belong to another schedule
                    try:
                        make_config(self.domain, values, self.smoke)
                    except ValueError as error:
                        raise UserError(f"search space {item.name}={choice!r}: {error}") from None
        return hp

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
        elif role != "worker":
            write_json(path, {**wanted, "created": time.strftime("%Y-%m-%d %H:%M:%S")})

    def planned_trials(self) -> int | None:
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
                 if not k.startswith("tuner/") and hp.is_active(k)}
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

    def _run_one(self, cfg, run_name: str, fold: int | None) -> dict[str, Any]:
        wanted = cfg.to_dict()
        summary, _ = run_or_resume(self.domain, cfg, self.dir / "trials", run_name,
                                   bundle=self._bundle(cfg, fold),
                                   same_config=lambda stored: _same_config(stored, wanted))
        if summary["status"] == "interrupted":
            raise KeyboardInterrupt
        return summary

    def run_trial(self, trial) -> Any:
        trial_id = trial.trial_id
        started = time.perf_counter()
        self._log({"event": "start", "trial": trial_id})
        overrides, shown = self.trial_values(trial)
        record = {"trial": trial_id, "hyperparameters": shown, "overrides": overrides,
                  "tuner_id": os.environ.get("KERASTUNER_TUNER_ID", "tuner0")}
        try:
            cfg = make_config(self.domain, {**self.fixed, **overrides}, self.smoke)
        except ValueError as error:
            self._finish(record, "failed", None, started, message=str(error))
            raise keras_tuner.errors.FailedTrialError(str(error)) from None
        summaries = []
        for fold in range(self.folds) if self.folds > 1 else [None]:
            run_name = f"trial_{trial_id}" + (f"-fold{fold + 1}" if fold is not None else "")
            try:
                summary = self._run_one(cfg, run_name, fold)
            except Exception as error:  # recorded; Keras Tuner counts it as a failed trial
                message = str(error) if isinstance(error, UserError) else (
                    f"{type(error).__name__}: {error}")
                self._finish(record, "failed", None, started, message=message)
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
            self._finish(record, "diverged", score, started, message=reason)
            for s in summaries:
                write_trial_hparams(Path(s["run_dir"]), {**shown, "status": "diverged"},
                                    f"trial_{trial_id}", score)
            return {objective: score}
        curves = [s.get("history", {}).get(objective) for s in summaries]
        if not all(curves):
            raise SearchAbort(f"the objective {objective} was not logged (history has "
                              f"{', '.join(summaries[0].get('history', {}))}); the data needs "
                              "a validation split.")
        length = min(len(c) for c in curves)
        mean_curve = [statistics.fmean(c[i] for c in curves) for i in range(length)]
        pick = max if direction == "max" else min
        best_epoch = mean_curve.index(pick(mean_curve))
        score = mean_curve[best_epoch]
        record["best_epoch"] = best_epoch + 1
        if len(curves) > 1:
            record["fold_scores"] = [c[best_epoch] for c in curves]
            record["score_std"] = statistics.stdev(record["fold_scores"])
        self._finish(record, "completed", score, started)
        for s, curve in zip(summaries, curves, strict=True):
            write_trial_hparams(Path(s["run_dir"]), {**shown, "status": "completed"},
                                f"trial_{trial_id}", curve[best_epoch])
        # Keras Tuner reads the per-epoch values from a History and keeps the best epoch.
        history = keras.callbacks.History()
        history.history = {objective: mean_curve}
        return history

    # -- records -------------------------------------------------------------------
    def _log(self, event: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({**event, "time": round(time.time(), 3), "pid": os.getpid(),
                           "tuner_id": os.environ.get("KERASTUNER_TUNER_ID", "tuner0")})
        with open(self.dir / "events.jsonl", "a", encoding="utf-8") as stream:
            stream.write(line + "\n")

    def _finish(self, record, status, score, started, message: str = "") -> None:
        record.update({"status": status, "score": score,
                       "wall_time_s": round(time.perf_counter() - started, 3)})
        if message:
            record["message"] = message
        write_json(self.dir / "results" / f"trial_{record['trial']}.json", record)
        self._log({"event": "end", "trial": record["trial"], "status": status})
        if self.announce:
            print(self._progress_line(record), flush=True)

    def records(self) -> list[dict[str, Any]]:
        folder = self.dir / "results"
        return [read_json(p) for p in sorted(folder.glob("trial_*.json"))] if folder.exists() else []

    def best_record(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        scored = [r for r in records if r["status"] == "completed"
                  and isinstance(r.get("score"), (int, float)) and math.isfinite(r["score"])]
        if not scored:
            return None
        sign = -1 if self.domain.direction == "max" else 1
        return min(scored, key=lambda r: (sign * r["score"], r["trial"]))

    def _progress_line(self, record: dict[str, Any]) -> str:
        records = self.records()
        planned = self.planned_trials()
        best = self.best_record(records)
        values = record["hyperparameters"]
        rate = values.get("learning_rate", record["overrides"].get("learning_rate"))
        score = _score_text(record.get("score"))
        best_text = (f"best so far {_score_text(best['score'])} (trial {best['trial']})"
                     if best else "no completed trial yet")
        return (f"trial {len(records)} of {planned or '?'} [{record['trial']}]: "
                f"lr={_rate_text(rate)} {record['overrides'].get('optimizer', self.base_cfg.optimizer)} "
                f"{record['overrides'].get('schedule', self.base_cfg.schedule)} "
                f"epochs={values.get('epochs')} -> {self.domain.objective}={score} "
                f"({record['status']}, {record['wall_time_s']:.1f} s); {best_text}")

    # -- results -------------------------------------------------------------------
    def table_rows(self, records: list[dict[str, Any]]) -> list[dict[str, str]]:
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
            })
        return rows

    def write_results(self) -> dict[str, Any] | None:
        records = self.records()
        rows = self.table_rows(records)
        columns = ["trial", "rate", "optimizer", "schedule", "epochs", "score", "status",
                   "time_s"]
        widths = {c: max([len(c)] + [len(row[c]) for row in rows]) for c in columns}
        lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
        lines += ["  ".join(row[c].ljust(widths[c]) for c in columns) for row in rows]
        table = "\n".join(lines) + "\n"
        (self.dir / "trials.txt").write_text(table, encoding="utf-8")
        with open(self.dir / "trials.csv", "w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        best = self.best_record(records)
        summary = None
        if best is not None:
            summary = {
                "domain": self.domain.name,
                "search_dir": str(self.dir),
                "tuner": self.tuner_kind,
                "objective": self.domain.objective,
                "direction": self.domain.direction,
                "trial": best["trial"],
                "score": best["score"],
                "score_std": best.get("score_std"),
                "best_epoch": best.get("best_epoch"),
                "hyperparameters": best["hyperparameters"],
                "overrides": {k: v for k, v in best["overrides"].items() if k != "epochs"},
                "max_epochs": self.max_epochs,
                "fixed": {k: v for k, v in self.fixed.items() if k not in BUDGET_FIELDS},
                "smoke": self.smoke,
                "run_dirs": best.get("run_dirs", []),
                "trials": len(records),
                "statuses": {s: sum(r["status"] == s for r in records)
                             for s in sorted({r["status"] for r in records})},
                "trial_time_s": round(sum(r.get("wall_time_s", 0) for r in records), 1),
            }
            write_json(self.dir / "best.json", summary)
        if self.announce:
            print(table, end="", flush=True)
            if summary:
                print(f"best: trial {best['trial']} {self.domain.objective}="
                      f"{_score_text(best['score'])}; retrain it with: lrsuite train "
                      f"{self.domain.name} --from-best {self.dir}", flush=True)
            else:
                print("no trial completed: no best.json written.", flush=True)
        return summary

    # -- driver --------------------------------------------------------------------
    def run(self) -> SearchResult:
        role = _role()
        self.check_definition(role)
        tuner = make_tuner(self.tuner_kind, self, directory=self.dir,
                           project_name="keras_tuner", objective=self.domain.objective,
                           direction=self.domain.direction, max_trials=self.max_trials,
                           seed=self.base_cfg.seed, max_epochs=self.max_epochs,
                           factor=self.factor)
        if role != "worker" and not list(self.dir.glob("events.out.tfevents.*")):
            write_hparams_config(self.dir, self.space, self.domain.objective)
        if role != "chief":
            self._bundle(self.base_cfg.replace(epochs=self.max_epochs), 0)  # bad data fails now
        if self.announce:
            planned = self.planned_trials()
            done = len(self.records())
            print(f"search directory: {self.dir} ({self.tuner_kind}, "
                  f"{planned or 'all'} trials, {done} done before; role {role})", flush=True)
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
        best = self.write_results() if role != "worker" else self.best_record(self.records())
        return SearchResult(self.dir, best, self.records())


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


def _score_text(score: Any) -> str:
    if isinstance(score, str):  # JSON keeps inf as the string "inf"
        return score
    if not isinstance(score, (int, float)):
        return "-"
    return f"{score:.4g}" if math.isfinite(score) else str(score)


def _rate_text(rate: Any) -> str:
    return f"{rate:.3g}" if isinstance(rate, (int, float)) else str(rate)


# -- Keras Tuner ----------------------------------------------------------------------
class _BayesianOracle(keras_tuner.oracles.BayesianOptimizationOracle):
    """Bayesian optimisation that sees a diverged trial as the worst finite score.

    Diverged trials score +-inf; the Gaussian process replaces inf by 0 (`nan_to_num`),
    which for a minimised loss would look like the best result. Overrides a private
    method of keras-tuner 1.4.8 (pinned in pyproject.toml).
    """

    def _vectorize_trials(self):
        x, y = super()._vectorize_trials()
        finite = np.isfinite(y)
        if len(y) and not finite.all():
            worst = y[finite].max() + max(np.ptp(y[finite]), 1.0) if finite.any() else 1.0
            y = np.where(finite, y, worst)
        return x, y


class SuiteTuner(keras_tuner.Tuner):
    """A Tuner whose trials are `run_training` runs (see `Search.run_trial`)."""

    def __init__(self, oracle, search: Search, **kwargs):
        self.search_def = search
        super().__init__(oracle, hypermodel=search.declare, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        return self.search_def.run_trial(trial)


def make_tuner(kind: str, search: Search, *, directory: Path, project_name: str,
               objective: str, direction: str, max_trials: int | None, seed: int,
               max_epochs: int, factor: int = 3) -> SuiteTuner:
    """Build the oracle for `kind` and the tuner that runs its trials.

    Existing state in `directory/project_name` is reloaded (overwrite=False): that is
    how a re-run resumes.
    """
    goal = keras_tuner.Objective(objective, direction=direction)
    common: dict[str, Any] = {"objective": goal, "seed": seed,
                              "max_consecutive_failed_trials": 3}
    if kind == "random":
        oracle = keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    elif kind == "grid":
        oracle = keras_tuner.oracles.GridSearchOracle(max_trials=max_trials, **common)
    elif kind == "bayesian":
        try:
            import scipy.optimize  # noqa: F401
            import sklearn.gaussian_process  # noqa: F401
        except ImportError:
            raise UserError("--tuner bayesian needs scikit-learn and scipy: pip install "
                            "'scikit-learn>=1.4', or use --tuner random|grid|hyperband.") from None
        oracle = _BayesianOracle(max_trials=max_trials, **common)
    elif kind == "hyperband":
        oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=max_epochs, factor=factor,
                                                     **common)
        oracle.max_trials = max_trials  # an optional cap; None runs every bracket
    else:
        raise UserError(f"unknown tuner {kind!r}. Expected one of: {', '.join(TUNERS)}")
    return SuiteTuner(oracle, search, directory=str(directory), project_name=project_name,
                      overwrite=False)


def run_search(domain: Domain, **kwargs) -> SearchResult:
    """Run (or resume) a search; keyword arguments are those of `Search`."""
    return Search(domain, **kwargs).run()


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


__all__ = ["TUNERS", "Search", "SearchResult", "config_overrides_from_best",
           "default_search_space", "fold_bundles", "make_tuner", "run_search",
           "parse_space_overrides"]
