"""The CLI starts TensorFlow with its pooled (BFC) CPU allocator unless the user chose."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.cpu_allocator import ALLOCATOR_ENV, prefer_pooled_allocator

REPO = Path(__file__).resolve().parents[2]
# Which allocator TensorFlow chose is only visible in its environment variable, so the
# probe imports the CLI in a fresh process and reads it back, with TensorFlow loaded.
PROBE = (
    "import os, sys; import common.cli; "
    "assert 'tensorflow' in sys.modules; "
    f"print(os.environ.get({ALLOCATOR_ENV!r}))"
)


def _cli_process_setting(**env_changes: str | None) -> str:
    env = dict(os.environ)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_the_cli_turns_the_pooled_allocator_on():
    assert _cli_process_setting(**{ALLOCATOR_ENV: None}) == "true"


def test_a_users_choice_wins():
    assert _cli_process_setting(**{ALLOCATOR_ENV: "false"}) == "false"


@pytest.mark.parametrize("given, kept", [(None, "true"), ("false", "false"), ("1", "1")])
def test_prefer_pooled_allocator_only_fills_an_unset_variable(monkeypatch, given, kept):
    if given is None:
        monkeypatch.delenv(ALLOCATOR_ENV, raising=False)
    else:
        monkeypatch.setenv(ALLOCATOR_ENV, given)
    prefer_pooled_allocator()
    assert os.environ[ALLOCATOR_ENV] == kept
