"""Median and ASHA pruning over a real Keras Tuner oracle, on a tiny linear regression."""

import keras
import keras_tuner
import numpy as np
import pytest

from common.errors import UserError
from common.pruning import (
    PruningCallback,
    asha_rungs,
    asha_says_stop,
    median_says_stop,
)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype("float32")
    y = (x @ np.array([[2.0], [-1.0]], dtype="float32") + 0.5).astype("float32")
    return x, y


def _train(oracle, trial, rate, epochs=4):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(rate), loss="mse")
    callback = PruningCallback(oracle, trial.trial_id, "val_loss", "min", rule="median")
    x, y = _data()
    history = model.fit(x, y, validation_data=(x, y), epochs=epochs, batch_size=16, verbose=0,
                        callbacks=[callback])
    oracle.end_trial(trial)
    return callback, len(history.history["loss"])


def test_median_pruning_stops_planted_bad_trial_and_keeps_good_one(tmp_path):
    space = keras_tuner.HyperParameters()
    space.Float("unused", 0.0, 1.0)  # a space with room for several distinct trials
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_loss", "min"), max_trials=10, seed=1,
        hyperparameters=space,
    )
    oracle._set_project_dir(str(tmp_path), "prune")
    outcomes = {}
    # Two good trials first give the median something to compare with.
    for name, rate in [("good1", 0.05), ("good2", 0.04), ("bad", 1e-9), ("good3", 0.06)]:
        trial = oracle.create_trial("tuner0")
        outcomes[name] = _train(oracle, trial, rate)
    bad_callback, bad_epochs = outcomes["bad"]
    assert bad_callback.pruned_epoch == 1 and bad_epochs == 1
    good_callback, good_epochs = outcomes["good3"]
    assert good_callback.pruned_epoch is None and good_epochs == 4
    # The pruned trial's value at epoch 1 was shared through the oracle's records.
    recorded = [t for t in oracle.trials.values() if t.metrics.exists("val_loss")]
    assert len(recorded) == 4


def test_median_rule_needs_two_other_trials():
    assert not median_says_stop(9.0, [1.0], epoch=1, direction="min")
    assert median_says_stop(9.0, [1.0, 2.0], epoch=1, direction="min")
    assert not median_says_stop(1.5, [1.0, 2.0, 3.0], epoch=1, direction="min")
    assert median_says_stop(0.1, [0.5, 0.6], epoch=1, direction="max")


def test_asha_rungs_and_top_fraction():
    assert asha_rungs(30, min_epochs=1, eta=3) == [1, 3, 9, 27]
    others = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert not asha_says_stop(0.05, others, epoch=3, rungs=[1, 3], direction="min")
    assert asha_says_stop(0.35, others, epoch=3, rungs=[1, 3], direction="min")
    assert not asha_says_stop(0.35, others, epoch=2, rungs=[1, 3], direction="min")


def test_unknown_rule_is_a_user_error():
    with pytest.raises(UserError, match="--prune 'mean'"):
        PruningCallback(None, "0", "val_loss", "min", rule="mean")


def test_search_with_median_pruning_marks_the_planted_bad_trial_pruned(tmp_path):
    from common.tuning import run_search
    from tests.toy_domain import TOY

    fast = {"monitor_every": 0, "log_lr_every": 0, "steps_per_epoch": 8}
    space = {"learning_rate": {"values": [0.1, 0.05, 1e-9]}, "schedule": {"values": ["constant"]}}
    result = run_search(TOY, fixed={"output": str(tmp_path), **fast}, tuner="grid",
                        max_trials=3, max_epochs=3, space=space, announce=False, prune="median")
    by_rate = {r["hyperparameters"]["learning_rate"]: r for r in result.records}
    assert by_rate[1e-9]["status"] == "pruned" and by_rate[1e-9]["pruned_epoch"] == 1
    assert by_rate[1e-9]["epochs_run"] == 1 and by_rate[1e-9]["wall_time_s"] > 0
    assert by_rate[0.1]["status"] == "completed" and by_rate[0.1]["epochs_run"] == 3


PRUNE_SCRIPT = """
import sys, time
from pathlib import Path
from common.tuning import run_search
from tests.toy_domain import TOY

output, gate, me = sys.argv[1], sys.argv[2], sys.argv[3]
Path(gate + "." + me).touch()  # imports done: wait until the test says go
while not Path(gate).exists():
    time.sleep(0.05)
space = {"learning_rate": {"values": [0.1, 0.05, 1e-9]}, "schedule": {"values": ["constant"]}}
run_search(TOY, fixed={"output": output, "monitor_every": 0, "log_lr_every": 0,
                       "steps_per_epoch": 8},
           tuner="grid", name="shared", max_trials=3, max_epochs=3, space=space, prune="median")
"""


def test_median_pruning_with_a_chief_and_two_workers(tmp_path):
    import json

    from tests.common.test_tuning_processes import read_events, run_chief_and_workers

    script = tmp_path / "prune_search.py"
    script.write_text(PRUNE_SCRIPT)
    run_chief_and_workers(script, lambda gate, tuner_id: [str(tmp_path), str(gate), tuner_id],
                          tmp_path, timeout=180)
    search_dir = tmp_path / "toy" / "tuning" / "shared"
    records = [json.loads(p.read_text()) for p in (search_dir / "results").glob("trial_*.json")]
    by_rate = {r["hyperparameters"]["learning_rate"]: r for r in records}
    assert set(by_rate) == {0.1, 0.05, 1e-9}
    # Workers train, the chief does not. Which worker takes which trial is a race (a trial
    # is under a second, about the workers' start-up skew): one may take all three, and
    # its pruning decision still goes through the chief's oracle. That both workers train
    # is tested in test_tuning_processes.
    assert {r["tuner_id"] for r in records} <= {"tuner0", "tuner1"}
    # The planted rate starts once a worker is free, when both others reported epoch 1.
    assert by_rate[1e-9]["status"] == "pruned" and by_rate[1e-9]["pruned_epoch"] == 1
    assert by_rate[0.1]["status"] == "completed" and by_rate[0.1]["epochs_run"] == 3
    starts = [e["trial"] for e in read_events(search_dir) if e["event"] == "start"]
    assert sorted(starts) == sorted(r["trial"] for r in records), "a trial ran twice"
