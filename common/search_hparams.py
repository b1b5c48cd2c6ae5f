"""A search's TensorBoard HParams: the experiment (its columns) at the search's root, and
each trial run's values and score, so the HParams dashboard lists trials side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras_tuner
import tensorflow as tf

from common.runs import FINISHED_STATUSES


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
