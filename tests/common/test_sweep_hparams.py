"""A sweep's HParams: the experiment declares the rate, optimizer, schedule and seed against
the objective and final metrics, and each run's session carries its values, read back from
the event files TensorBoard reads."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import tensorflow as tf
from tensorboard.plugins.hparams import plugin_data_pb2

from common.sweep_hparams import write_sweep_hparams

RATES = (1e-5, 1e-3, 0.1, 1.0)


def _summaries(sweep_dir: Path) -> list[dict]:
    runs = []
    for rate in RATES:
        diverged = rate == 1.0
        summary = {"run_dir": str(sweep_dir / f"rate-{rate:.0e}"), "learning_rate": rate,
                   "optimizer": "adam", "schedule": "constant", "seed": 42,
                   "objective": "val_accuracy",
                   "status": "diverged" if diverged else "completed"}
        if not diverged:  # a diverged run has no final metrics
            summary.update({"val_accuracy": 0.5 + rate / 4, "train_loss": 1 - rate / 2,
                            "test_accuracy": 0.5 + rate / 5, "test_loss": 0.9 - rate})
        runs.append(summary)
    runs.append({"run_dir": str(sweep_dir / "optimizer-sgd"), "learning_rate": 1e-3,
                 "optimizer": "sgd", "schedule": "cosine", "seed": 42,
                 "objective": "val_accuracy", "status": "completed", "val_accuracy": 0.6,
                 "train_loss": 0.7, "test_accuracy": 0.55, "test_loss": 0.8})
    return runs


def _values(folder: Path) -> list:
    files = sorted(folder.glob("events.out.tfevents.*"))
    return [value for file in files for event in tf.compat.v1.train.summary_iterator(str(file))
            for value in event.summary.value]


def _plugin(value) -> plugin_data_pb2.HParamsPluginData:
    return plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)


def _experiment(sweep_dir: Path):
    (experiment,) = [_plugin(v).experiment for v in _values(sweep_dir)
                     if v.tag == "_hparams_/experiment"]
    return experiment


def test_the_experiment_declares_rate_optimizer_schedule_seed_and_the_metrics(tmp_path):
    summaries = _summaries(tmp_path)
    assert write_sweep_hparams(tmp_path, summaries) == len(summaries)
    experiment = _experiment(tmp_path)
    infos = {info.name: info for info in experiment.hparam_infos}
    assert list(infos)[:5] == ["learning_rate", "log10_learning_rate", "optimizer",
                               "schedule", "seed"]
    assert all(infos[n].differs for n in ("learning_rate", "optimizer", "schedule", "seed"))
    rate = infos["learning_rate"].domain_interval
    assert (rate.min_value, rate.max_value) == (pytest.approx(1e-5), pytest.approx(1.0))
    log_rate = infos["log10_learning_rate"].domain_interval
    assert (log_rate.min_value, log_rate.max_value) == (pytest.approx(-5), pytest.approx(0))
    assert {v.string_value for v in infos["optimizer"].domain_discrete.values} == {"adam", "sgd"}
    assert {v.string_value for v in infos["schedule"].domain_discrete.values} == {
        "constant", "cosine"}
    metrics = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
    assert {("", "sweep/val_accuracy"), ("", "sweep/train_loss"), ("", "sweep/test_accuracy"),
            ("", "sweep/test_loss"), ("validation", "epoch_accuracy"),
            ("validation", "epoch_loss")} <= metrics


def test_each_run_is_a_session_with_its_rate_and_final_metrics(tmp_path):
    summaries = _summaries(tmp_path)
    write_sweep_hparams(tmp_path, summaries)
    for summary in summaries:
        values = _values(Path(summary["run_dir"]))
        (start,) = [_plugin(v).session_start_info for v in values
                    if v.tag == "_hparams_/session_start_info"]
        assert start.hparams["learning_rate"].number_value == pytest.approx(
            summary["learning_rate"])
        assert start.hparams["log10_learning_rate"].number_value == pytest.approx(
            math.log10(summary["learning_rate"]))
        assert start.hparams["optimizer"].string_value == summary["optimizer"]
        assert start.hparams["status"].string_value == summary["status"]
        assert start.group_name == Path(summary["run_dir"]).name
        scalars = {v.tag: float(tf.make_ndarray(v.tensor)) for v in values
                   if v.tag.startswith("sweep/")}
        if summary["status"] == "diverged":
            assert scalars == {}  # a blank cell, not a number that was never measured
        else:
            assert scalars["sweep/val_accuracy"] == pytest.approx(summary["val_accuracy"])
            assert scalars["sweep/test_loss"] == pytest.approx(summary["test_loss"])
            described = {v.tag for v in values
                         if v.tag.startswith("sweep/") and v.metadata.summary_description}
            assert described == set(scalars)


def test_writing_again_replaces_the_experiment_and_sessions(tmp_path):
    summaries = _summaries(tmp_path)
    write_sweep_hparams(tmp_path, summaries[:2])
    write_sweep_hparams(tmp_path, summaries)  # a resumed sweep with more runs
    rate = {i.name: i for i in _experiment(tmp_path).hparam_infos}["learning_rate"]
    assert rate.domain_interval.max_value == pytest.approx(1.0)
    first = _values(Path(summaries[0]["run_dir"]))
    assert sum(v.tag == "_hparams_/session_start_info" for v in first) == 1


def test_runs_without_a_rate_are_left_out(tmp_path):
    assert write_sweep_hparams(tmp_path, [{"run_dir": str(tmp_path / "x"),
                                           "learning_rate": "auto"}]) == 0
    assert not list(tmp_path.glob("events.out.tfevents.*"))
