"""The Keras Tuner side of a search: an oracle per `--tuner` and the tuner whose trials
are `run_training` runs.

No HyperModel: Keras Tuner allows `hypermodel=None` when `run_trial` is overridden, which
is the honest shape here, since a trial builds no model for Keras Tuner to keep: it is a
whole training run (see `Search.run_trial`). The search space is declared once
(`common.search_space.declare_space`) and handed to the oracle as its `hyperparameters`,
conditional schedule parameters included.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import keras_tuner
import numpy as np

from common.errors import UserError

TUNERS = ("random", "grid", "bayesian", "hyperband", "pbt")
IDLE_WAIT_S = 0.2  # between asks while a PBT round is still running elsewhere


class SearchAbort(keras_tuner.errors.FatalError):
    """Stops the whole search (Keras Tuner re-raises FatalError instead of retrying)."""


def hyperband_trial_count(max_epochs: int, factor: int) -> int:
    """How many trials one Hyperband iteration runs (mirrors HyperbandOracle's sizes)."""
    brackets, epochs = 0, max_epochs
    while epochs >= 1:
        epochs /= factor
        brackets += 1
    end0 = math.ceil(1 + math.log(max_epochs, factor))
    return sum(math.ceil(end0 / (b + 1) * factor ** (b - r))
               for b in range(brackets) for r in range(b + 1))


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
    """A Tuner whose trials are `run_training` runs: `run_trial(trial)` is called back."""

    def __init__(self, oracle, run_trial, **kwargs):
        self._run_suite_trial = run_trial
        self._asked_without_trial = False
        super().__init__(oracle, hypermodel=None, **kwargs)

    def pre_create_trial(self):
        # Keras Tuner asks again at once after an IDLE answer; wait a little instead.
        if self._asked_without_trial:
            time.sleep(IDLE_WAIT_S)
        self._asked_without_trial = True

    def on_trial_begin(self, trial):
        self._asked_without_trial = False
        super().on_trial_begin(trial)

    def run_trial(self, trial, *args, **kwargs):
        return self._run_suite_trial(trial)


def make_tuner(kind: str, run_trial, *, space: keras_tuner.HyperParameters, directory: Path,
               project_name: str, objective: str, direction: str, max_trials: int | None,
               seed: int, max_epochs: int, factor: int = 3,
               pbt: dict[str, Any] | None = None) -> SuiteTuner:
    """Build the oracle for `kind` over `space` and the tuner that runs its trials.

    Existing state in `directory/project_name` is reloaded (overwrite=False): that is
    how a re-run resumes. `pbt` holds PopulationOracle's population and rounds.
    """
    goal = keras_tuner.Objective(objective, direction=direction)
    common: dict[str, Any] = {"objective": goal, "seed": seed, "hyperparameters": space.copy(),
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
    elif kind == "pbt":
        from common.pbt import PopulationOracle

        oracle = PopulationOracle(**(pbt or {}), **common)
    else:
        raise UserError(f"unknown tuner {kind!r}. Expected one of: {', '.join(TUNERS)}")
    return SuiteTuner(oracle, run_trial, directory=str(directory), project_name=project_name,
                      overwrite=False)


def process_role() -> str:
    """single, chief (the oracle) or worker, from the KERASTUNER_* variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID")
               if v not in os.environ]
    if missing:
        raise UserError(f"KERASTUNER_ORACLE_IP is set but {', '.join(missing)} is not: a "
                        "distributed search needs all three variables.")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"
