"""TensorBoard HParams for searches (and, through the shared helpers, sweeps): the experiment
(its columns) at the folder's root, and each run's values and score, so the HParams
dashboard lists runs side by side and plots a hyperparameter against a metric.

TensorBoard orders the columns by whether they are marked as differing, then by name, and
shows only the first few: the hyperparameters that matter most are marked, so they lead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import keras_tuner
import tensorflow as tf

from common.runs import FINISHED_STATUSES

# The columns a reader looks at first, in this order.
LEADING_HPARAMS = ("learning_rate", "optimizer", "schedule", "epochs")
HPARAMS_DESCRIPTIONS = {
    "learning_rate": "Peak learning rate of the run.",
    "optimizer": "Optimizer, by its lr-suite name.",
    "schedule": "Learning-rate schedule (lrsuite schedules lists them).",
    "epochs": "Epochs this run trained for (Hyperband: its bracket's budget).",
    "status": "completed, or diverged (its score is the worst possible).",
}


def hparams_api():
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


def _description(name: str) -> str:
    if name in HPARAMS_DESCRIPTIONS:
        return HPARAMS_DESCRIPTIONS[name]
    if "/" in name:  # "<schedule>/<parameter>", sampled only for trials of that schedule
        schedule, parameter = name.split("/", 1)
        return f"The {schedule} schedule's {parameter}; blank for trials of other schedules."
    return ""


def make_hparam(name: str, domain) -> Any:
    """An HParams column with its description."""
    return hparams_api().HParam(name, domain, description=_description(name) or None)


def _remove_previous(log_dir: Path, suffix: str) -> None:
    """Event files this module wrote before, so that writing again replaces them."""
    for path in log_dir.glob(f"events.out.tfevents.*{suffix}"):
        path.unlink()


def write_experiment(log_dir: Path, hparams: list, metrics: list, *, suffix: str,
                     leading: Iterable[str] = LEADING_HPARAMS) -> None:
    """The experiment at `log_dir`, with the `leading` hyperparameters shown first.
    Replaces one written before with the same `suffix`."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    order = {name: i for i, name in enumerate(leading)}
    hparams = sorted(hparams, key=lambda h: (order.get(h.name, len(order)), h.name))
    summary = hparams_api().hparams_config_pb(hparams=hparams, metrics=metrics)
    for value in summary.value:
        data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
        for info in data.experiment.hparam_infos:
            info.differs = info.name in order  # TensorBoard lists these columns first
        value.metadata.plugin_data.content = data.SerializeToString()
    log_dir.mkdir(parents=True, exist_ok=True)
    _remove_previous(log_dir, suffix)
    writer = tf.summary.create_file_writer(str(log_dir), filename_suffix=suffix)
    with writer.as_default():
        tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=0)
    writer.close()


def write_session(run_dir: Path, values: dict[str, Any], group: str,
                  scalars: dict[str, float], *, suffix: str,
                  descriptions: dict[str, str] | None = None) -> None:
    """One run's hyperparameter values (runs sharing `group` are one row) and the scalars
    the experiment's metrics name; non-finite scalars are left out (a blank cell).
    Replaces a session written before with the same `suffix`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    _remove_previous(run_dir, suffix)
    writer = tf.summary.create_file_writer(str(run_dir), filename_suffix=suffix)
    with writer.as_default():
        hparams_api().hparams(values, trial_id=group)
        for tag, value in scalars.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                tf.summary.scalar(tag, value, step=0,
                                  description=(descriptions or {}).get(tag))
    writer.close()


def objective_metrics(objective: str) -> list:
    """The per-epoch curves Keras writes: loss on train and validation, and the
    objective's own metric on validation."""
    hp_api = hparams_api()
    metrics = [hp_api.Metric("epoch_loss", group="train", display_name="loss (train)"),
               hp_api.Metric("epoch_loss", group="validation", display_name="loss (val)")]
    if objective.startswith("val_") and objective != "val_loss":
        name = objective.removeprefix("val_")
        metrics.append(hp_api.Metric(f"epoch_{name}", group="validation",
                                     display_name=f"{name} (val)"))
    return metrics


SEARCH_SUFFIX = ".search-hparams"
SCORE_DESCRIPTION = ("The trial's score: its objective at its best epoch (the mean over folds "
                     "with --folds); blank for a diverged trial.")


def write_hparams_config(log_dir: Path, space, objective: str,
                         max_epochs: int | None = None) -> None:
    """The experiment at the search's root, so TensorBoard's HParams dashboard has columns.
    `max_epochs` bounds the epochs column (a trial trains 1 to max_epochs epochs)."""
    hp_api = hparams_api()
    hparams = [make_hparam(item.name, _hparam_domain(item, hp_api)) for item in space.space]
    epochs = hp_api.IntInterval(1, max_epochs) if max_epochs else None
    hparams += [make_hparam("epochs", epochs),
                make_hparam("status", hp_api.Discrete(list(FINISHED_STATUSES)))]
    metrics = [hp_api.Metric("tuning/score", display_name=f"score ({objective})",
                             description=SCORE_DESCRIPTION)]
    metrics += objective_metrics(objective)
    write_experiment(log_dir, hparams, metrics, suffix=SEARCH_SUFFIX)


def write_trial_hparams(run_dir: Path, values: dict[str, Any], group: str, score: float) -> None:
    """This run's hyperparameters; folds of one trial share `group`, so TensorBoard
    aggregates them into one row. A conditional hyperparameter the trial did not sample
    (another schedule's) is not in `values`, so it is absent, not a value."""
    write_session(run_dir, values, group, {"tuning/score": score}, suffix=SEARCH_SUFFIX,
                  descriptions={"tuning/score": SCORE_DESCRIPTION})
