"""The command line answers for itself: every option of every command has help, the version
prints, a closed pipe ends quietly and `make help` shows real paths."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common import cli
from common.config import OPTIMIZER_NAMES
from common.domain import domain_names, get_domain
from common.sweep import DEFAULT_OPTIMIZERS, DEFAULT_SCHEDULES

REPO = Path(__file__).resolve().parents[2]
DOMAIN_COMMANDS = ("train", "lr-find", "sweep", "tune")


@pytest.fixture
def shown_parsers(monkeypatch):
    """The parsers whose help was printed, in order."""
    shown: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.format_help

    def recording_format_help(self):
        shown.append(self)
        return original(self)

    monkeypatch.setattr(argparse.ArgumentParser, "format_help", recording_format_help)
    return shown


def _own_help(action: argparse.Action) -> str:
    """The help an option writes itself, without the default argparse or we append."""
    text = action.help or ""
    if text == argparse.SUPPRESS:
        return ""
    return re.sub(r"\(default: [^)]*\)", "", text).strip()


@pytest.mark.parametrize("command", DOMAIN_COMMANDS)
@pytest.mark.parametrize("domain", domain_names())
def test_every_option_of_every_command_has_help(command, domain, shown_parsers, capsys):
    assert cli.main([command, domain, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:")
    parser = shown_parsers[-1]
    options = [a for a in parser._actions if a.option_strings]
    assert len(options) > 20  # the config's flags are there
    bare = [a.option_strings[0] for a in options if not _own_help(a)]
    assert bare == [], f"{command} {domain}: options without help: {bare}"


@pytest.mark.parametrize("command", ["report", "demo"])
def test_every_option_of_the_plain_commands_has_help(command, shown_parsers, capsys):
    assert cli.main([command, "--help"]) == 0
    bare = [a.option_strings[0] for a in shown_parsers[-1]._actions
            if a.option_strings and not _own_help(a)]
    assert bare == []


def _help_of(shown_parsers, capsys, argv: list[str], flag: str) -> str:
    assert cli.main(argv) == 0
    capsys.readouterr()
    action = next(a for a in shown_parsers[-1]._actions if flag in a.option_strings)
    return action.help % {"default": action.default} if "%(" in action.help else action.help


def test_early_stopping_help_names_patience_epochs_and_the_metric(shown_parsers, capsys):
    domain = get_domain("sentiment")
    text = _help_of(shown_parsers, capsys, ["train", "sentiment", "--help"], "--early-stopping")
    assert "patience" in text and "epochs" in text
    assert domain.objective in text and "training loss" in text
    assert "(default: 2)" in text  # the domain's own default, under its base class's help


def test_optimizer_help_lists_every_choice(shown_parsers, capsys):
    text = _help_of(shown_parsers, capsys, ["train", "sentiment", "--help"], "--optimizer")
    assert all(name in text for name in OPTIMIZER_NAMES)


def test_sweep_lists_shows_their_defaults(shown_parsers, capsys):
    argv = ["sweep", "sentiment", "--help"]
    assert ",".join(DEFAULT_SCHEDULES) in _help_of(shown_parsers, capsys, argv, "--schedules")
    assert ",".join(DEFAULT_OPTIMIZERS) in _help_of(shown_parsers, capsys, argv, "--optimizers")


def test_version_prints_the_installed_version(capsys):
    from importlib import metadata

    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"lrsuite {metadata.version('lr-suite')}"


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "KERAS_BACKEND": "tensorflow",
            "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_a_closed_pipe_ends_quietly():
    # `true` exits before Python has started, so every write meets a closed pipe;
    # `head -1` would race the reader against the single buffered write.
    script = f"{sys.executable} -m common.cli schedules | true"
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {script}"], cwd=REPO,
                            capture_output=True, text=True, env=_environment(), timeout=120)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr
    assert result.stderr.strip() == ""


def test_head_of_a_listing_is_one_line_without_traceback():
    script = f"{sys.executable} -m common.cli schedules | head -1"
    result = subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True,
                            env=_environment(), timeout=120)
    assert result.stdout.splitlines() == [result.stdout.splitlines()[0]]
    assert result.stdout.startswith("constant")
    assert result.stderr.strip() == ""


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_help_expands_its_variables():
    result = subprocess.run(["make", "--no-print-directory", "help", "OUTPUT=out_dir",
                             "TB_PORT=7123", "VENV=venv_dir"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "$(" not in result.stdout
    assert "Serve out_dir/ in TensorBoard on 127.0.0.1:7123" in result.stdout
    assert "(venv_dir)" in result.stdout


def test_train_lr_find_and_sweep_end_with_the_command_that_shows_the_run(monkeypatch, tmp_path,
                                                                            capsys):
    import types

    import common.domain
    from tests.toy_domain import TOY

    module = types.ModuleType("toy_for_view")
    module.DOMAIN = TOY
    monkeypatch.setitem(sys.modules, "toy_for_view", module)
    monkeypatch.setitem(common.domain.DOMAIN_MODULES, "toy", "toy_for_view")
    data = TOY.write_demo_data(tmp_path / "data")
    tiny = ["--smoke", "--data", str(data), "--output", str(tmp_path / "runs"),
            "--monitor-every", "0", "--epochs", "1"]
    assert cli.main(["train", "toy", *tiny, "--run-name", "t"]) == 0
    out = capsys.readouterr().out
    run_dir = tmp_path / "runs" / "toy" / "t"
    assert f"view: tensorboard --logdir {run_dir} --host 127.0.0.1" in out
    assert cli.main(["lr-find", "toy", *tiny, "--num-steps", "12", "--run-name", "f"]) == 0
    out = capsys.readouterr().out
    assert f"view: tensorboard --logdir {tmp_path / 'runs' / 'toy' / 'f'} --host 127.0.0.1" in out
    assert "plot " in out and ".png" in out
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "runs" / "toy" / "f"))
    events.Reload()
    tags = events.Tags()["tensors"] + events.Tags()["images"]
    assert {"range_test/learning_rate", "range_test/smoothed_loss"} <= set(tags)
    assert all(events.SummaryMetadata(tag).summary_description for tag in tags)
    sweep = ["sweep", "toy", *tiny, "--name", "s", "--rates", "0.01,0.1", "--schedules", "",
             "--optimizers", "", "--range-test-steps", "10"]
    assert cli.main(sweep) == 0
    out = capsys.readouterr().out
    sweep_dir = tmp_path / "runs" / "toy" / "sweeps" / "s"
    assert f"view: tensorboard --logdir {sweep_dir} --host 127.0.0.1" in out
    assert f"open {sweep_dir / 'report.html'}" in out
