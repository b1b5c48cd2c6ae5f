"""`lrsuite tune ... --confirm-seeds K` on the toy domain: K runs per arm, a comparison
whose figures are the runs' own, reuse on a rerun, a planted bad default that the winner
beats beyond noise, and a bad K refused in one line."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path

import pytest

import common.domain
from common import cli
from common.confirm_seeds import confirm_search
from common.tuning import run_search
from tests.toy_domain import TOY, ToyConfig
from tests.toy_domain import load_data as toy_load_data

FAST = {"monitor_every": 0, "log_lr_every": 0, "steps_per_epoch": 8}
GOOD_RATES = {"learning_rate": {"min": 3e-2, "max": 0.3}, "schedule": {"values": ["constant"]}}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SlowDefaultConfig(ToyConfig):
    learning_rate: float | str = 1e-4  # planted: far too low for 3 short epochs


def same_task_data(cfg):
    """One regression task for every seed: the seed moves only the initial weights."""
    return toy_load_data(dataclasses.replace(cfg, seed=0))


# Found by `lrsuite tune toy` once the test registers this module as the toy domain.
DOMAIN = dataclasses.replace(TOY, config_cls=SlowDefaultConfig, load_data=same_task_data)


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory):
    output = tmp_path_factory.mktemp("confirm")
    search = run_search(TOY, fixed={"output": str(output), **FAST}, tuner="random",
                        max_trials=2, max_epochs=2, space=GOOD_RATES, announce=False)
    result = confirm_search(TOY, search.search_dir, 2, announce=False)
    return search.search_dir, result


def test_two_runs_per_arm_and_the_means_are_the_runs_own(confirmed):
    search_dir, result = confirmed
    stored = json.loads((search_dir / "confirm.json").read_text())
    assert stored["seeds"] == result["seeds"] and len(stored["seeds"]) == 2
    assert stored["method"].startswith("paired Student-t 95%")
    for arm in ("winner", "default"):
        runs = sorted((search_dir / "confirm" / arm).glob("seed-*/summary.json"))
        assert [p.parent.name for p in runs] == [f"seed-{s}" for s in stored["seeds"]]
        summaries = [json.loads(p.read_text()) for p in runs]
        assert all(s["status"] == "completed" and s["epochs_run"] == 2 for s in summaries)
        for metric in ("val_loss", "test_loss"):
            values = [s[metric] for s in summaries]
            entry = stored["metrics"][metric][arm]
            assert entry["n"] == 2
            assert entry["mean"] == pytest.approx(statistics.mean(values))
            assert entry["sd"] == pytest.approx(statistics.stdev(values))
            assert (entry["min"], entry["max"]) == (min(values), max(values))
    difference = stored["metrics"]["val_loss"]["winner_minus_default"]
    low, high = difference["interval"]
    assert low <= difference["difference"] <= high
    assert difference["verdict"] in ("better", "worse", "within noise")
    # The winner retrains the best trial's rate; the default keeps the config's.
    best = json.loads((search_dir / "best.json").read_text())
    winner = json.loads((search_dir / "confirm/winner/seed-42/config.json").read_text())
    default = json.loads((search_dir / "confirm/default/seed-42/config.json").read_text())
    assert winner["learning_rate"] == pytest.approx(best["overrides"]["learning_rate"])
    assert default["learning_rate"] == ToyConfig().learning_rate
    assert winner["epochs"] == default["epochs"] == best["max_epochs"]
    assert best["confirmation"]["metrics"] == stored["metrics"]


def test_the_report_table_holds_both_arms_and_the_verdict(confirmed):
    search_dir, result = confirmed
    lines = (search_dir / "confirm.md").read_text().splitlines()
    rows = [line.strip("|").split(" | ") for line in lines if line.startswith("| val_loss")]
    assert len(rows) == 1
    verdict = result["metrics"]["val_loss"]["winner_minus_default"]["verdict"]
    assert rows[0][3].strip().endswith(verdict)
    assert "n=2" in rows[0][1] and "n=2" in rows[0][2]
    assert "Student-t" in (search_dir / "confirm.html").read_text()


def test_rerun_reuses_every_finished_seed(confirmed):
    search_dir, _ = confirmed
    before = {p: p.stat().st_mtime_ns for p in (search_dir / "confirm").rglob("summary.json")}
    again = confirm_search(TOY, search_dir, 2, announce=False)
    assert again["reused_runs"] == 4
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_planted_bad_default_loses_beyond_noise(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(common.domain.DOMAIN_MODULES, "toy", __name__)
    argv = ["tune", "toy", "--output", str(tmp_path), "--tuner", "random", "--max-trials", "2",
            "--max-epochs", "3", "--monitor-every", "0", "--log-lr-every", "0",
            "--confirm-seeds", "4"]  # 4: t-interval narrow enough
    space = tmp_path / "space.json"
    space.write_text(json.dumps(GOOD_RATES))
    assert cli.main([*argv, "--space", str(space)]) == 0
    out = capsys.readouterr().out
    last = [line for line in out.splitlines() if line.startswith("confirmation over seeds")]
    assert len(last) == 1 and ": better" in last[0]
    stored = json.loads((tmp_path / "toy/tuning/random/confirm.json").read_text())
    difference = stored["metrics"]["val_loss"]["winner_minus_default"]
    assert difference["verdict"] == "better" and difference["n"] == 4
    assert difference["interval"][1] < 0  # lower loss is better: the whole interval below 0
    assert math.isfinite(stored["metrics"]["val_loss"]["default"]["mean"])


@pytest.mark.parametrize("count", ["1", "-2", "two"])
def test_bad_confirm_seeds_exit_2_with_one_line(tmp_path, capsys, count):
    argv = ["tune", "sentiment", "--smoke", "--data", str(tmp_path), "--output", str(tmp_path),
            "--confirm-seeds", count]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--confirm-seeds {count}" in err
    assert not (Path(tmp_path) / "sentiment").exists()
