"""Population-based training on the toy domain: exploit, explore, records, replay, resume
after SIGKILL, and a chief with two workers; and the piecewise schedule it replays with."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

import common.domain
from common import cli
from common.errors import UserError
from common.pbt import EXPLORE_FACTORS, checkpoint_path, replay_overrides
from common.schedule_registry import build_schedule
from common.training import plan_schedule
from common.tuning import run_search
from tests.common.test_tuning_processes import read_events, run_chief_and_workers, start, wait_for
from tests.toy_domain import TOY, ToyConfig

DOMAIN = TOY  # `lrsuite ... toy` finds it once a test registers this module
FAST = {"monitor_every": 0, "log_lr_every": 0, "steps_per_epoch": 8}
SPACE = {"learning_rate": {"min": 1e-3, "max": 0.5}}
POPULATION, READY, ROUNDS = 4, 1, 3


@pytest.fixture(scope="module")
def pbt_search(tmp_path_factory):
    output = tmp_path_factory.mktemp("pbt")
    result = run_search(TOY, fixed={"output": str(output), **FAST}, tuner="pbt",
                        population=POPULATION, ready_epochs=READY, rounds=ROUNDS, space=SPACE,
                        announce=False)
    return result


def read(path: Path):
    return json.loads(Path(path).read_text())


def checkpoint_vars(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path) as stored:
        return {"kernel": stored["layers/dense/vars/0"][()],
                "bias": stored["layers/dense/vars/1"][()],
                "iterations": stored["optimizer/vars/0"][()],
                "learning_rate": stored["optimizer/vars/1"][()]}


def entries(record):
    return [(int(m), e) for m, rows in record["members"].items() for e in rows]


def test_every_member_has_a_rate_and_score_per_round_in_pbt_json(pbt_search):
    record = read(pbt_search.search_dir / "pbt.json")
    results = {r["trial"]: r for r in pbt_search.records}
    assert len(results) == POPULATION * ROUNDS
    assert sorted(record["members"]) == [str(m) for m in range(POPULATION)]
    for member, row in entries(record):
        trial = results[row["trial"]]
        assert trial["pbt"]["member"] == member and trial["pbt"]["round"] == row["round"]
        assert row["rate"] == trial["overrides"]["learning_rate"]
        assert row["score"] == pytest.approx(trial["score"])
        config = read(Path(trial["run_dirs"][0]) / "config.json")
        assert config["learning_rate"] == row["rate"] and config["epochs"] == READY
    for rows in record["members"].values():
        assert [e["round"] for e in rows] == list(range(ROUNDS))


def test_the_weakest_member_exploits_a_top_one_and_explores_its_rate(pbt_search):
    record = read(pbt_search.search_dir / "pbt.json")
    rows = {(m, e["round"]): e for m, e in entries(record)}
    for round_index in range(1, ROUNDS):
        before = {m: rows[(m, round_index - 1)] for m in range(POPULATION)}
        ranked = sorted(before, key=lambda m: (before[m]["score"], m))  # val_loss: lower wins
        moved = [m for m in range(POPULATION) if rows[(m, round_index)]["move"] != "continue"]
        assert moved == [ranked[-1]], "one member in four (20%, at least one) is replaced"
        row = rows[(moved[0], round_index)]
        assert row["donor"] == ranked[0]  # the top 20% of four is the best member alone
        factor = row["rate"] / before[row["donor"]]["rate"]
        assert any(math.isclose(factor, f, rel_tol=1e-9) for f in EXPLORE_FACTORS)
        assert row["move"] == f"x{min(EXPLORE_FACTORS, key=lambda f: abs(f - factor))}"
        for member in set(range(POPULATION)) - set(moved):
            assert rows[(member, round_index)]["rate"] == before[member]["rate"]


def test_a_copy_starts_from_the_donors_weights_and_optimizer_state(pbt_search, tmp_path):
    search_dir = pbt_search.search_dir
    record = read(search_dir / "pbt.json")
    member, row = next((m, e) for m, e in entries(record) if e["move"] != "continue"
                       and e["round"] == 1)
    donor = checkpoint_vars(checkpoint_path(search_dir, row["parent"]))
    own = checkpoint_vars(checkpoint_path(search_dir, f"member-{member}/round-0"))
    after = checkpoint_vars(checkpoint_path(search_dir, f"member-{member}/round-1"))
    assert row["parent"] == f"member-{row['donor']}/round-0"
    # The optimizer's step count went on from the donor's; its rate is the member's own.
    assert after["iterations"] == donor["iterations"] + FAST["steps_per_epoch"]
    assert after["learning_rate"] == pytest.approx(row["rate"])
    # The member's round, redone by hand from the donor's weights, ends where it ended;
    # from its own weights it would not.
    keras.utils.set_random_seed(ToyConfig().seed)
    bundle = TOY.load_data(ToyConfig())
    batches = list(bundle.fresh_train().take(FAST["steps_per_epoch"]))

    def one_round(start):
        kernel, bias = start["kernel"].astype("float64"), start["bias"].astype("float64")
        for x, y in batches:
            x, y = x.numpy().astype("float64"), y.numpy().astype("float64")
            error = x @ kernel + bias - y
            kernel = kernel - row["rate"] * 2 * x.T @ error / error.size
            bias = bias - row["rate"] * 2 * error.mean(axis=0)
        return kernel

    np.testing.assert_allclose(one_round(donor), after["kernel"], rtol=1e-4, atol=1e-5)
    assert not np.allclose(one_round(own), after["kernel"], rtol=1e-4, atol=1e-5)


def test_best_json_replays_the_winners_lineage_and_train_from_best_runs_it(
        pbt_search, tmp_path, monkeypatch):
    search_dir = pbt_search.search_dir
    record = read(search_dir / "pbt.json")
    best = read(search_dir / "best.json")
    winner = record["winner"]
    last_round = {e["trial"]: e["score"] for _, e in entries(record) if e["round"] == ROUNDS - 1}
    assert winner["trial"] == min(last_round, key=last_round.get) == best["trial"]
    by_trial = {e["trial"]: (m, e) for m, e in entries(record)}
    lineage = [by_trial[t][1] for t in winner["lineage"]]
    assert [e["round"] for e in lineage] == list(range(ROUNDS))
    for child, parent in zip(lineage[1:], lineage, strict=False):
        assert child["parent"] == f"member-{by_trial[parent['trial']][0]}/round-{parent['round']}"
    assert winner["rates"] == [e["rate"] for e in lineage]
    assert best["overrides"]["schedule"] == "piecewise"

    monkeypatch.setitem(common.domain.DOMAIN_MODULES, "toy", __name__)
    assert cli.main(["train", "toy", "--from-best", str(search_dir), "--output", str(tmp_path),
                     "--run-name", "replay", "--steps-per-epoch", "8",
                     "--monitor-every", "0"]) == 0
    with open(tmp_path / "toy" / "replay" / "steps.csv") as stream:
        steps = list(csv.DictReader(stream))
    assert len(steps) == ROUNDS * READY * 8
    for step in steps:
        wanted = winner["rates"][(int(step["epoch"]) - 1) // READY]
        assert float(step["learning_rate"]) == pytest.approx(wanted, rel=1e-6), step


def test_search_report_has_the_population_plot_and_compute(pbt_search):
    search_dir = pbt_search.search_dir
    assert (search_dir / "pbt_schedules.png").stat().st_size > 0
    compute = read(search_dir / "best.json")["compute"]
    assert compute["epochs"] == POPULATION * ROUNDS * READY
    assert compute["by_status"]["completed"]["trials"] == POPULATION * ROUNDS


def test_piecewise_rate_matches_its_boundaries():
    plan = build_schedule("piecewise", 0.1, steps_per_epoch=4, epochs=6,
                          args={"at_epochs": (2.0, 4.0), "multipliers": (1.0, 0.5, 0.1)})
    rates = [float(plan.learning_rate(step)) for step in range(24)]
    wanted = [0.1] * 8 + [0.05] * 8 + [0.01] * 8
    np.testing.assert_allclose(rates, wanted, rtol=1e-6)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(plan.learning_rate))
    assert float(restored(8)) == pytest.approx(0.05)


def test_replay_overrides_of_one_or_more_rounds():
    assert replay_overrides([0.2], 3)["schedule"] == "constant"
    replay = replay_overrides([0.2, 0.25, 0.2], 2)
    assert replay["schedule_args"]["at_epochs"] == [2.0, 4.0]
    rates = [replay["learning_rate"] * m for m in replay["schedule_args"]["multipliers"]]
    np.testing.assert_allclose(rates, [0.2, 0.25, 0.2])


@pytest.mark.parametrize(("args", "message"), [
    ({"at_epochs": (2.0,), "multipliers": (1.0,)}, "one value per piece"),
    ({"at_epochs": (3.0, 2.0), "multipliers": (1.0, 0.5, 0.1)}, "strictly increasing"),
    ({"at_epochs": (-1.0,), "multipliers": (1.0, 0.5)}, "positive epochs"),
    ({"at_epochs": (2.0,), "multipliers": (1.0, 0.0)}, "finite and > 0"),
])
def test_bad_piecewise_parameters_are_one_line_user_errors(args, message):
    cfg = ToyConfig(schedule="piecewise", schedule_args=args, epochs=6)
    with pytest.raises(UserError, match=message) as error:
        plan_schedule(cfg, 0.1, 4)
    assert "\n" not in str(error.value) and "piecewise" in str(error.value)


def test_bad_population_or_ready_epochs_exit_2_and_write_nothing(tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.setitem(common.domain.DOMAIN_MODULES, "toy", __name__)
    base = ["tune", "toy", "--tuner", "pbt", "--output", str(tmp_path)]
    assert cli.main([*base, "--population", "1", "--ready-epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "--population must be an integer >= 2" in err and len(err.strip().splitlines()) == 1
    assert cli.main([*base, "--population", "4", "--ready-epochs", "0"]) == 2
    assert "--ready-epochs must be an integer >= 1" in capsys.readouterr().err
    assert cli.main([*base, "--population", "4", "--ready-epochs", "5", "--max-epochs",
                     "3"]) == 2
    assert "longer than --max-epochs" in capsys.readouterr().err
    assert cli.main(["tune", "toy", "--tuner", "random", "--population", "4", "--output",
                     str(tmp_path)]) == 2
    assert "--tuner pbt only" in capsys.readouterr().err
    assert not (tmp_path / "toy").exists()


SCRIPT = """
import sys, time
from pathlib import Path
from common.tuning import run_search
from tests.toy_domain import TOY

output, name, rounds, gate = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if gate != "-":  # wait (imports done) until the test says go, so that workers overlap
    Path(gate + "." + sys.argv[5]).touch()
    while not Path(gate).exists():
        time.sleep(0.05)
result = run_search(TOY, fixed={"output": output, "monitor_every": 0, "log_lr_every": 0,
                                "steps_per_epoch": 8},
                    tuner="pbt", name=name, population=4, ready_epochs=1, rounds=rounds,
                    space={"learning_rate": {"min": 1e-3, "max": 0.5}})
print("best", result.best and result.best["trial"])
"""


@pytest.fixture
def script(tmp_path) -> Path:
    path = tmp_path / "pbt_search.py"
    path.write_text(SCRIPT)
    return path


def round_of(search_dir: Path, trial: str) -> int:
    return read(search_dir / "keras_tuner" / f"trial_{trial}" / "trial.json")[
        "hyperparameters"]["values"]["pbt/round"]


def test_resume_after_sigkill_between_rounds_repeats_no_round(tmp_path, script):
    search_dir = tmp_path / "toy" / "tuning" / "killed"
    args = [str(tmp_path), "killed", "3", "-"]
    first = start(script, args, log=tmp_path / "first.log")
    try:
        def first_round_ended():  # ended in our log and stored by Keras Tuner as completed
            try:
                stored = [read(f) for f in (search_dir / "keras_tuner").glob("trial_*/trial.json")]
            except ValueError:  # a trial.json caught mid-write: ask again
                return False
            completed = sum(t["hyperparameters"]["values"]["pbt/round"] == 0
                            and t["status"] == "COMPLETED" for t in stored)
            return completed >= POPULATION and (search_dir / "keras_tuner" / "oracle.json").exists()

        wait_for(first_round_ended, 180, "the end of round 0", [first])
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    killed_at = time.time()
    ended = {e["trial"] for e in read_events(search_dir) if e["event"] == "end"}
    done_rounds = {r for r in range(3)
                   if sum(round_of(search_dir, t) == r for t in ended) == POPULATION}
    assert 0 in done_rounds

    second = start(script, args, log=tmp_path / "second.log")
    assert second.wait(timeout=240) == 0, (tmp_path / "second.log").read_text()[-2000:]
    restarted = {e["trial"] for e in read_events(search_dir)
                 if e["event"] == "start" and e["time"] > killed_at}
    assert not {round_of(search_dir, t) for t in restarted} & done_rounds, "a round ran again"
    assert not restarted & ended
    record = read(search_dir / "pbt.json")
    assert all([e["round"] for e in rows] == [0, 1, 2] for rows in record["members"].values())
    assert len(list((search_dir / "results").glob("trial_*.json"))) == POPULATION * 3
    assert record["winner"] is not None


def test_a_chief_and_two_workers_run_pbt_rounds_together(tmp_path, script):
    run_chief_and_workers(script, lambda gate, tuner_id: [str(tmp_path), "shared", "2", str(gate),
                                                          tuner_id], tmp_path, timeout=180)
    search_dir = tmp_path / "toy" / "tuning" / "shared"
    results = [read(p) for p in (search_dir / "results").glob("trial_*.json")]
    assert len(results) == POPULATION * 2
    assert {r["tuner_id"] for r in results} == {"tuner0", "tuner1"}
    starts = [e["trial"] for e in read_events(search_dir) if e["event"] == "start"]
    assert sorted(starts) == sorted(r["trial"] for r in results), "a trial ran twice"
    # Round 1 began only after every round-0 member had ended.
    events = read_events(search_dir)
    round_of_trial = {r["trial"]: r["pbt"]["round"] for r in results}
    last_end_0 = max(e["time"] for e in events
                     if e["event"] == "end" and round_of_trial[e["trial"]] == 0)
    first_start_1 = min(e["time"] for e in events
                        if e["event"] == "start" and round_of_trial[e["trial"]] == 1)
    assert first_start_1 >= last_end_0
    record = read(search_dir / "pbt.json")  # the chief wrote it
    moved = [e for rows in record["members"].values() for e in rows if e["round"] == 1
             and e["move"] != "continue"]
    assert len(moved) == 1
    for r in results:
        assert checkpoint_path(search_dir, f"member-{r['pbt']['member']}/"
                               f"round-{r['pbt']['round']}").exists()
    assert read(search_dir / "best.json")["pbt"]["winner"]["rates"]
