"""Run a test script in a fresh Python on the JAX backend (the backend is fixed per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_on_jax(script: str, tmp_path: Path) -> list[str]:
    """Run `script` with KERAS_BACKEND=jax on the CPU; its stdout's words, or a failed test."""
    pytest.importorskip("jax")
    path = tmp_path / "on_jax.py"
    path.write_text(script)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO),
           "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, str(path)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()
