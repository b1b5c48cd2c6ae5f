"""Early pruning of tuner trials: median stopping and ASHA rungs.

Per-epoch objective values are shared through the Keras Tuner oracle (``update_trial`` with
``step=epoch``), so the rules see every trial's values, also with a chief and workers.
"""

import math

import keras
import numpy as np

from common.errors import UserError

PRUNE_RULES = ("median", "asha")


def values_at_epoch(histories, epoch, exclude):
    """Objective values that other trials reported at ``epoch``."""
    return [h[epoch] for tid, h in histories.items() if tid != exclude and epoch in h]


def _worse(value, reference, direction):
    return value < reference if direction == "max" else value > reference


def median_says_stop(value, others, epoch, direction, min_epochs=1, min_trials=2):
    """Median stopping: worse than the median of other trials' values at the same epoch."""
    if epoch < min_epochs or len(others) < min_trials:
        return False
    return _worse(value, float(np.median(others)), direction)


def asha_rungs(max_epochs, min_epochs=1, eta=3):
    """Rung epochs eta^k * min_epochs below ``max_epochs``."""
    rungs, k = [], 0
    while min_epochs * eta**k < max_epochs:
        rungs.append(min_epochs * eta**k)
        k += 1
    return rungs


def asha_says_stop(value, others, epoch, rungs, direction, eta=3):
    """ASHA: at a rung, keep the trial only if it is in the top 1/eta of those at that rung."""
    if epoch not in rungs or not others:
        return False
    everyone = sorted(others + [value], reverse=(direction == "max"))
    keep = max(1, math.floor(len(everyone) / eta))
    return _worse(value, everyone[keep - 1], direction)


def oracle_histories(oracle, objective_name):
    """{trial_id: {epoch: mean value}} from the oracle's trial records."""
    histories = {}
    for tid, trial in oracle.trials.items():
        if not trial.metrics.exists(objective_name):
            continue
        histories[tid] = {
            obs.step: float(obs.mean()) for obs in trial.metrics.get_history(objective_name)
        }
    return histories


def check_rule(rule):
    if rule not in PRUNE_RULES:
        raise UserError(f"--prune {rule!r} is not known; use one of: {', '.join(PRUNE_RULES)}")
    return rule


class PruningCallback(keras.callbacks.Callback):
    """Reports the objective each epoch to the oracle and stops the trial when the rule says so.

    Epochs are counted from 1. After a stop, ``pruned_epoch`` holds the epoch it stopped at.
    """

    def __init__(self, oracle, trial_id, objective_name, direction, rule="median",
                 max_epochs=None, min_epochs=1, eta=3, min_trials=2):
        super().__init__()
        self.oracle = oracle
        self.trial_id = trial_id
        self.objective_name = objective_name
        self.direction = direction
        self.rule = check_rule(rule)
        self.min_epochs = min_epochs
        self.eta = eta
        self.min_trials = min_trials
        self.rungs = asha_rungs(max_epochs or 1, min_epochs, eta) if rule == "asha" else []
        self.pruned_epoch = None
        self.epochs_run = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.objective_name not in logs:
            return
        epoch_number = epoch + 1
        self.epochs_run = epoch_number
        value = float(logs[self.objective_name])
        self.oracle.update_trial(self.trial_id, {self.objective_name: value}, step=epoch_number)
        others = values_at_epoch(
            oracle_histories(self.oracle, self.objective_name), epoch_number, self.trial_id
        )
        if self.rule == "median":
            stop = median_says_stop(value, others, epoch_number, self.direction,
                                    self.min_epochs, self.min_trials)
        else:
            stop = asha_says_stop(value, others, epoch_number, self.rungs, self.direction, self.eta)
        if stop:
            self.pruned_epoch = epoch_number
            self.model.stop_training = True
