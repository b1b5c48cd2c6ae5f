"""Keras Tuner searches on the toy domain: they find the known-good rate band, record
diverged trials and go on, sample schedule parameters only under their schedule, write
HParams, cross-validate, and refuse bad input without touching a stored search."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
from pathlib import Path

import keras_tuner
import pytest
import tensorflow as tf
from tensorboard.plugins.hparams import plugin_data_pb2

from common import cli
from common.errors import UserError
from common.schedule_registry import SPECS, build_schedule
from common.tuning import (
    SCHEDULE_SPACE,
    Search,
    config_overrides_from_best,
    hyperband_trial_count,
    run_search,
)
from tests.conftest import write_sentiment_folder
from tests.toy_domain import KNOWN_GOOD_BAND, TOY

FAST = {"monitor_every": 0, "log_lr_every": 0, "steps_per_epoch": 16}
# Reaches 10 so that some trials diverge (SGD on the toy is unstable above ~1).
WIDE = {"learning_rate": {"min": 1e-4, "max": 10.0}}


def events(search_dir: Path) -> list[dict]:
    lines = (search_dir / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def records(search_dir: Path) -> dict[str, dict]:
    return {json.loads(p.read_text())["trial"]: json.loads(p.read_text())
            for p in (search_dir / "results").glob("trial_*.json")}


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def random_search(tmp_path_factory):
    output = tmp_path_factory.mktemp("tune")
    result = run_search(TOY, fixed={"output": str(output), **FAST}, tuner="random",
                        max_trials=8, max_epochs=3, space=WIDE, announce=False)
    return result


def test_random_search_finds_a_rate_in_the_known_good_band(random_search):
    best = json.loads((random_search.search_dir / "best.json").read_text())
    low, high = KNOWN_GOOD_BAND
    assert low <= best["overrides"]["learning_rate"] < high
    assert best["objective"] == "val_loss" and best["direction"] == "min"
    finished = [r for r in random_search.records if r["status"] == "completed"]
    assert best["score"] == min(r["score"] for r in finished)
    assert len(random_search.records) == 8


def test_diverged_trials_score_worst_and_the_search_goes_on(random_search):
    diverged = [r for r in random_search.records if r["status"] == "diverged"]
    assert diverged, "the space reaches lr=10, where SGD on the toy must diverge"
    assert all(r["overrides"]["learning_rate"] > 0.5 for r in diverged)
    assert all(r["score"] == "inf" and "exceeded" in r["message"] for r in diverged)
    # Trials after the first divergence still ran, and Keras Tuner ranks it last.
    first = min(int(r["trial"]) for r in diverged)
    assert any(int(r["trial"]) > first for r in random_search.records)
    oracle_trial = json.loads((random_search.search_dir / "keras_tuner" / f"trial_{first}"
                               / "trial.json").read_text())
    assert oracle_trial["status"] == "COMPLETED" and math.isinf(oracle_trial["score"])
    for r in diverged:  # each diverged run stopped early, in its own run directory
        summary = json.loads((Path(r["run_dirs"][0]) / "summary.json").read_text())
        assert summary["status"] == "diverged" and summary["steps_run"] < 3 * 16


def test_each_trial_is_a_normal_run_directory_and_the_table_is_written(random_search):
    search_dir = random_search.search_dir
    for r in random_search.records:
        run_dir = Path(r["run_dirs"][0])
        assert run_dir.parent == search_dir / "trials"
        assert {"config.json", "summary.json", "train"} <= {p.name for p in run_dir.iterdir()}
    table = (search_dir / "trials.txt").read_text().splitlines()
    header = table[0].split()
    assert header[:8] == ["trial", "rate", "optimizer", "schedule", "epochs", "score",
                          "status", "time_s"]
    # Then every other column some trial sampled (a schedule's parameters here).
    sampled = {k for r in random_search.records for k in r["hyperparameters"]} - {
        "learning_rate", "optimizer", "schedule", "epochs"}
    assert sampled and header[8:] == sorted(sampled)
    assert len(table) == 1 + 8 and any("diverged" in line for line in table)
    with (search_dir / "trials.csv").open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 8 and list(rows[0]) == header
    for row in rows:
        record = next(r for r in random_search.records if r["trial"] == row["trial"])
        for name in sampled:  # a value where the trial sampled it, "-" where not
            assert (row[name] == "-") == (name not in record["hyperparameters"])


def test_best_json_times_the_winning_trial_and_the_search_apart(random_search):
    best = json.loads((random_search.search_dir / "best.json").read_text())
    record = next(r for r in random_search.records if r["trial"] == best["trial"])
    assert best["trial_time_s"] == round(record["wall_time_s"], 1)
    total = sum(r["wall_time_s"] for r in random_search.records)
    assert best["search_time_s"] == round(total, 1) > best["trial_time_s"]


def test_schedule_parameters_appear_only_under_their_schedule(random_search):
    for r in random_search.records:
        values = r["hyperparameters"]
        conditional = {k for k in values if "/" in k}
        schedule = values["schedule"]
        assert conditional == {f"{schedule}/{p[0]}" for p in SCHEDULE_SPACE.get(schedule, ())}
        assert r["overrides"]["schedule_args"] == {k.split("/")[1]: v for k, v in values.items()
                                                  if k in conditional}


def test_every_schedule_parameter_range_is_valid_for_its_schedule():
    for name, params in SCHEDULE_SPACE.items():
        known = {p.name for p in SPECS[name].params}
        for param, low, high, _ in params:
            assert param in known, (name, param)
            for value in (low, high):
                build_schedule(name, 0.1, steps_per_epoch=10, epochs=10, args={param: value})


def test_conditional_parameters_are_sampled_only_when_the_parent_is_chosen(tmp_path):
    search = Search(TOY, fixed={"output": str(tmp_path)}, announce=False,
                    space={"schedule": {"values": ["constant", "cosine", "one_cycle"]}})
    conditions = {item.name: item.conditions for item in search.space.space}
    assert conditions["one_cycle/pct_start"][0].get_config() == {
        "name": "schedule", "values": ["one_cycle"]}
    assert not conditions["learning_rate"]
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_loss", "min"), max_trials=60, seed=1,
        hyperparameters=search.space)
    seen = set()
    for i in range(60):
        values = oracle.populate_space(str(i))["values"]
        schedule = values["schedule"]
        seen.add(schedule)
        sampled = {k.split("/")[0] for k in values if "/" in k}
        assert sampled <= {schedule}, values
        if schedule in ("cosine", "one_cycle"):
            assert sampled == {schedule}
    assert seen == {"constant", "cosine", "one_cycle"}


def test_bayesian_gives_diverged_trials_the_worst_finite_score_not_zero():
    pytest.importorskip("sklearn")
    from common.tuning import _BayesianOracle

    space = keras_tuner.HyperParameters()
    space.Float("learning_rate", 1e-4, 10.0, sampling="log")
    oracle = _BayesianOracle(objective=keras_tuner.Objective("val_loss", "min"),
                             max_trials=5, hyperparameters=space)
    for trial_id, (rate, score) in enumerate([(0.1, 0.2), (5.0, math.inf), (0.01, 0.7)]):
        hp = space.copy()
        hp.values["learning_rate"] = rate
        trial = keras_tuner.engine.trial.Trial(hp, trial_id=str(trial_id), status="COMPLETED")
        trial.score = score
        oracle.trials[str(trial_id)] = trial
    _, y = oracle._vectorize_trials()
    assert list(y[[0, 2]]) == [0.2, 0.7]
    assert math.isfinite(y[1]) and y[1] > 0.7  # worse than every finite score, not 0


def test_bayesian_search_runs_on_the_toy(tmp_path):
    pytest.importorskip("sklearn")
    result = run_search(TOY, fixed={"output": str(tmp_path), **FAST}, tuner="bayesian",
                        max_trials=3, max_epochs=2, space=WIDE, announce=False)
    assert len(result.records) == 3 and result.best is not None


def _summaries(event_file: Path) -> list:
    return [value for event in tf.compat.v1.train.summary_iterator(str(event_file))
            for value in event.summary.value]


def _plugin_data(value) -> plugin_data_pb2.HParamsPluginData:
    return plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)


def test_hparams_experiment_and_sessions_read_back_from_the_event_files(random_search):
    search_dir = random_search.search_dir
    (root_file,) = search_dir.glob("events.out.tfevents.*")
    (experiment,) = [_plugin_data(v).experiment for v in _summaries(root_file)
                     if v.tag == "_hparams_/experiment"]
    names = {info.name for info in experiment.hparam_infos}
    assert {"learning_rate", "schedule", "cosine/alpha", "epochs", "status"} <= names
    infos = {info.name: info for info in experiment.hparam_infos}
    # The epochs column spans what a trial can train (1 to --max-epochs), not 1..1e6.
    epochs = infos["epochs"].domain_interval
    assert (epochs.min_value, epochs.max_value) == (1, 3)
    # TensorBoard lists the columns marked as differing first: the ones that matter.
    leading = [info.name for info in experiment.hparam_infos if info.differs]
    assert leading[:2] == ["learning_rate", "schedule"] and "cosine/alpha" not in leading
    assert "blank" in infos["cosine/alpha"].description
    metrics = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
    assert ("validation", "epoch_loss") in metrics and ("", "tuning/score") in metrics

    record = min(random_search.records, key=lambda r: int(r["trial"]))
    run_dir = Path(record["run_dirs"][0])
    (trial_file,) = run_dir.glob("events.out.tfevents.*")
    values = _summaries(trial_file)
    (start,) = [_plugin_data(v).session_start_info for v in values
                if v.tag == "_hparams_/session_start_info"]
    assert start.hparams["learning_rate"].number_value == pytest.approx(
        record["hyperparameters"]["learning_rate"])
    assert start.hparams["status"].string_value == record["status"]
    assert start.group_name == f"trial_{record['trial']}"
    # Another schedule's parameters are absent from this trial, not empty values.
    sampled = {k for k in start.hparams if "/" in k}
    assert sampled == {k for k in record["hyperparameters"] if "/" in k}
    assert all(k.startswith(record["hyperparameters"]["schedule"] + "/") for k in sampled)
    assert any(v.tag == "tuning/score" for v in values)
    # The validation curve TensorBoard joins to the session is where the metric says.
    assert list((run_dir / "validation").glob("events.out.tfevents.*"))


def test_rerunning_a_finished_search_runs_nothing_again(random_search):
    before = events(random_search.search_dir)
    again = run_search(TOY, fixed={"output": str(random_search.search_dir.parents[2]), **FAST},
                       tuner="random", max_trials=8, max_epochs=3, space=WIDE, announce=False)
    assert events(random_search.search_dir) == before
    assert again.best["trial"] == random_search.best["trial"]


def test_from_best_gives_the_winning_overrides_without_the_search_budget(random_search):
    overrides = config_overrides_from_best(random_search.search_dir)
    assert overrides["learning_rate"] == random_search.best["overrides"]["learning_rate"]
    assert overrides["epochs"] == 3 and "steps_per_epoch" not in overrides  # full budget
    cfg = TOY.config_cls(**overrides)
    assert cfg.schedule == random_search.best["overrides"]["schedule"]
    with pytest.raises(UserError, match="no best.json"):
        config_overrides_from_best(random_search.search_dir / "trials")


def test_hyperband_honours_tuner_epochs_and_finds_the_band(tmp_path):
    result = run_search(TOY, fixed={"output": str(tmp_path), **FAST}, tuner="hyperband",
                        max_epochs=3, space={"learning_rate": {"min": 1e-4, "max": 3.0}},
                        announce=False)
    assert len(result.records) == hyperband_trial_count(3, 3) == 6
    budgets = set()
    for r in result.records:
        summary = json.loads((Path(r["run_dirs"][0]) / "summary.json").read_text())
        budgets.add(r["hyperparameters"]["epochs"])
        if summary["status"] == "completed":
            assert summary["epochs_run"] == r["hyperparameters"]["epochs"]
    assert budgets == {1, 3}
    low, high = KNOWN_GOOD_BAND
    assert low <= result.best["overrides"]["learning_rate"] < high
    assert result.best["hyperparameters"]["epochs"] == 3


def test_rate_bounds_can_come_from_the_range_test_and_stay_on_resume(tmp_path):
    kwargs = dict(fixed={"output": str(tmp_path), **FAST}, tuner="random", max_trials=1,
                  max_epochs=1, lr_range_test=True, announce=False)
    result = run_search(TOY, **kwargs)
    suggestion = json.loads((result.search_dir / "lr-find" / "range_test.json").read_text())[
        "suggestion"]
    stored = json.loads((result.search_dir / "search.json").read_text())
    (rate,) = [s["config"] for s in stored["space"] if s["config"]["name"] == "learning_rate"]
    assert rate["min_value"] == pytest.approx(suggestion / 10)
    assert rate["max_value"] == pytest.approx(suggestion * 10)
    assert 1e-3 < suggestion < 1.0  # the toy's SGD band, give or take a decade
    again = run_search(TOY, **{**kwargs, "max_trials": 2})  # resumes: same space, one more
    assert len(again.records) == 2


def test_folds_score_the_mean_over_folds_with_its_spread(tmp_path):
    result = run_search(TOY, fixed={"output": str(tmp_path), **FAST, "examples": 256},
                        tuner="random", max_trials=2, max_epochs=2, folds=2,
                        space={"learning_rate": {"min": 0.02, "max": 0.2}}, announce=False)
    assert [r["status"] for r in result.records] == ["completed", "completed"]
    for r in result.records:
        assert len(r["run_dirs"]) == 2 and r["run_dirs"][1].endswith("-fold2")
        assert r["score"] == pytest.approx(sum(r["fold_scores"]) / 2)
        assert r["score_std"] >= 0
        summary = json.loads((Path(r["run_dirs"][0]) / "summary.json").read_text())
        assert "fold 1 of 2" in summary["data"]


def test_failing_trials_are_recorded_and_three_in_a_row_stop_the_search(tmp_path):
    def broken_model(cfg, bundle):
        raise RuntimeError("no such layer")

    broken = dataclasses.replace(TOY, build_model=broken_model)
    with pytest.raises(UserError, match="search stopped: Number of consecutive failures"):
        run_search(broken, fixed={"output": str(tmp_path), **FAST}, tuner="random",
                   max_trials=5, max_epochs=1, announce=False)
    failed = records(tmp_path / "toy" / "tuning" / "random")
    assert len(failed) == 3
    assert all(r["status"] == "failed" and "RuntimeError: no such layer" in r["message"]
               for r in failed.values())


@pytest.mark.parametrize("kwargs,needle", [
    ({"tuner": "evolution"}, "unknown tuner 'evolution'"),
    ({"space": {"learning_rate": {"min": 1.0, "max": 0.1}}}, "empty or inverted"),
    ({"space": {"learning_rate": {"min": 0.1, "max": 0.1}}}, "empty or inverted"),
    ({"space": {"schedule": {"values": []}}}, "non-empty list"),
    ({"space": {"momentum_rate": {"min": 0.1, "max": 0.9}}}, "no hyperparameter 'momentum_rate'"),
    ({"space": {"schedule": {"values": ["constant", "warp"]}}}, "schedule='warp'"),
    ({"space": {"learning_rate": {"min": 0.0, "max": 0.1}}}, "needs min > 0"),
    ({"folds": 0}, "--folds must be >= 1"),
])
def test_bad_search_input_is_a_user_error(tmp_path, kwargs, needle):
    with pytest.raises(UserError) as error:
        run_search(TOY, fixed={"output": str(tmp_path)}, announce=False, **kwargs)
    assert needle in str(error.value)
    assert not (tmp_path / "toy").exists()


def test_a_changed_space_on_resume_is_refused_and_the_search_is_intact(random_search):
    before = snapshot(random_search.search_dir)
    output = str(random_search.search_dir.parents[2])
    with pytest.raises(UserError, match="space differs in learning_rate"):
        run_search(TOY, fixed={"output": output, **FAST}, tuner="random", max_trials=8,
                   max_epochs=3, space={"learning_rate": {"min": 1e-3, "max": 10.0}},
                   announce=False)
    with pytest.raises(UserError, match="fixed differs in batch_size"):
        run_search(TOY, fixed={"output": output, **FAST, "batch_size": 8}, tuner="random",
                   max_trials=8, max_epochs=3, space=WIDE, announce=False)
    assert snapshot(random_search.search_dir) == before


def test_cli_tune_bad_input_exits_2_with_one_line(tmp_path, capsys):
    space = tmp_path / "space.json"
    space.write_text('{"learning_rate": {"min": 1e-2, "max": 1e-3}}')
    common = ["--output", str(tmp_path), "--smoke", "--data", str(tmp_path)]
    assert cli.main(["tune", "sentiment", "--tuner", "evolution", *common]) == 2
    assert "unknown tuner 'evolution'" in capsys.readouterr().err
    assert cli.main(["tune", "sentiment", "--space", str(space), *common]) == 2
    err = capsys.readouterr().err
    assert "empty or inverted" in err and len(err.strip().splitlines()) == 1
    space.write_text("{not json")
    assert cli.main(["tune", "sentiment", "--space", str(space), *common]) == 2
    assert f"{space}:1: not valid JSON" in capsys.readouterr().err


def test_cli_tune_sentiment_end_to_end(tmp_path, capsys):
    data = write_sentiment_folder(tmp_path / "data", train=120, test=40)
    argv = ["tune", "sentiment", "--smoke", "--data", str(data), "--output", str(tmp_path),
            "--tuner", "random", "--max-trials", "2", "--name", "s", "--monitor-every", "0"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "trial 2 of 2" in out and "--from-best" in out
    search_dir = tmp_path / "sentiment" / "tuning" / "s"
    best = json.loads((search_dir / "best.json").read_text())
    assert best["objective"] == "val_accuracy" and best["direction"] == "max"
    overrides = config_overrides_from_best(search_dir)
    assert overrides["data"] == str(data) and overrides["optimizer"] in (
        "adam", "adamw", "rmsprop", "momentum")


def test_train_from_best_retrains_the_winner(tmp_path):
    data = write_sentiment_folder(tmp_path / "data", train=120, test=40)
    assert cli.main(["tune", "sentiment", "--smoke", "--data", str(data), "--output",
                     str(tmp_path), "--tuner", "random", "--max-trials", "2", "--name", "s",
                     "--monitor-every", "0"]) == 0
    search_dir = tmp_path / "sentiment" / "tuning" / "s"
    best = json.loads((search_dir / "best.json").read_text())
    assert cli.main(["train", "sentiment", "--from-best", str(search_dir), "--smoke",
                     "--epochs", "1", "--run-name", "winner", "--output", str(tmp_path)]) == 0
    config = json.loads((tmp_path / "sentiment" / "winner" / "config.json").read_text())
    assert config["learning_rate"] == pytest.approx(best["hyperparameters"]["learning_rate"])
    assert config["optimizer"] == best["hyperparameters"]["optimizer"]
    assert config["epochs"] == 1  # a flag given to train wins over the search's budget
