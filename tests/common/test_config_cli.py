"""Config validation and the command line: bad input is one line, exit code 2, nothing written."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from common import cli
from common.config import TrainConfig, check_learning_rate
from domains.sentiment.config import SentimentConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", [0, -1e-3, math.nan, math.inf, "fast", True])
def test_bad_learning_rates_are_rejected_with_the_value(value):
    with pytest.raises(ValueError, match="learning_rate"):
        check_learning_rate(value)


def test_auto_and_numbers_are_learning_rates():
    assert check_learning_rate("auto") == "auto"
    assert check_learning_rate("3e-4") == pytest.approx(3e-4)


@pytest.mark.parametrize("field,value,match", [
    ("epochs", 0, "epochs must be an integer >= 1"),
    ("optimizer", "adamx", "Unknown optimizer"),
    ("momentum", 1.0, "momentum must be in"),
    ("run_name", "a/b", "plain folder name"),
    ("divergence_factor", 1.0, "divergence_factor must be > 1"),
])
def test_config_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


def test_config_json_round_trip():
    cfg = SentimentConfig(learning_rate=3e-4, kernel_sizes=(2, 3), schedule="cosine",
                          schedule_args={"alpha": 0.1})
    again = SentimentConfig.from_dict(json.loads(cfg.to_json()) | {"kernel_sizes": (2, 3)})
    assert again == cfg
    with pytest.raises(ValueError, match="Unknown config field"):
        SentimentConfig.from_dict({"learning_rat": 0.1})


@pytest.mark.parametrize("args,needle", [
    (["train", "sentiment", "--lr", "-1"], "learning_rate must be a finite number > 0"),
    (["train", "sentiment", "--lr", "nan"], "Received: learning_rate=nan"),
    (["train", "sentiment", "--lr", "abc"], "learning_rate must be a positive number"),
    (["train", "sentiment", "--optimizer", "adamx"], "Unknown optimizer"),
    (["train", "poetry"], "unknown domain 'poetry'"),
    (["train", "sentiment", "--data", "/no/such/folder"], "/no/such/folder"),
    (["train", "sentiment", "--schedule", "wavy"], "Unknown schedule"),
    (["train", "sentiment", "--schedule", "cosine", "--schedule-arg", "gamma=2"],
     "has no parameter gamma"),
    (["train", "sentiment", "--epochs", "two"], "invalid int value: 'two'"),
    (["lr-find"], "lr-find needs a domain"),
])
def test_bad_input_is_one_line_exit_2_and_no_run_directory(tmp_path, capsys, args, needle):
    code = cli.main([*args, "--output", str(tmp_path / "runs")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lrsuite: error") and needle in err[0], err
    assert not (tmp_path / "runs").exists()


def test_the_installed_command_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "common.cli", "train", "sentiment", "--lr", "0",
         "--output", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lrsuite: error: learning_rate must be a finite number > 0 (e.g. 1e-3), or 'auto'. "
        "Received: learning_rate=0.0"]


def test_bad_schedule_parameter_fails_before_any_run_directory(tmp_path, sentiment_folder):
    code = cli.main(["train", "sentiment", "--smoke", "--data", str(sentiment_folder),
                     "--output", str(tmp_path / "runs"), "--schedule", "cosine",
                     "--warmup-epochs", "5"])
    assert code == 2
    assert not list((tmp_path / "runs").rglob("config.json"))


def test_help_lists_every_option():
    result = subprocess.run([sys.executable, "-m", "common.cli", "train", "sentiment", "--help"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for flag in ("--lr", "--optimizer", "--epochs", "--batch-size", "--seed", "--run-name",
                 "--output", "--steps-per-epoch", "--schedule", "--warmup-epochs",
                 "--schedule-arg", "--data", "--vocab-size"):
        assert flag in result.stdout, flag


def test_schedules_list_and_plot(tmp_path, capsys):
    assert cli.main(["schedules"]) == 0
    listing = capsys.readouterr().out
    for name in ("one_cycle", "triangular2", "cosine_restarts", "transformer", "plateau"):
        assert name in listing
    out = tmp_path / "oc.png"
    assert cli.main(["schedules", "plot", "one_cycle", "pct_start=0.25", "--lr", "0.5",
                     "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["schedules", "plot", "one_cycle", "pct_start=2"]) == 2
    assert "pct_start must be in (0, 1)" in capsys.readouterr().err
