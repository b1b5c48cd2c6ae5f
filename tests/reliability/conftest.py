"""Reliability checks run the installed `lrsuite` command in subprocesses, on tiny data
generated in every domain's own local format (each Domain's `write_demo_data`). The
domains are the registry's (`common.domain.domain_names()`), so a new one is picked up.

Subprocesses are what a user runs: the one-line error, the exit code and the absence of a
traceback are properties of the whole process (TensorFlow's start-up included), which an
in-process `cli.main` call cannot show. Start-up costs a few seconds per process, so the
modules run their independent commands two at a time (`run_all`) and share the data and
the good runs through session-scoped fixtures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.domain import domain_names, get_domain

REPO = Path(__file__).resolve().parents[2]
DOMAINS = tuple(domain_names())
# The tiny budget of a good run: the smoke preset, one epoch of two steps, no warmup (a
# warmup must be shorter than training).
TINY = ["--smoke", "--epochs", "1", "--steps-per-epoch", "2", "--schedule", "constant",
        "--warmup-epochs", "0", "--verbose", "0", "--monitor-every", "0", "--jit-compile", "off"]
RUN_FILES = ("summary.json", "model.keras", "config.json")
GOOD_RUN = "X"
PARALLEL = 2  # the machine's cores


def lrsuite() -> list[str]:
    """The installed console script, or the module when the package is not installed."""
    script = Path(sys.executable).with_name("lrsuite")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "common.cli"]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # What a user's shell has: TensorFlow's own log level unset (the CLI must quiet it),
    # and no network, so that nothing can fall back to a download.
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env["LRSUITE_NETWORK_PROBE_HOST"] = "nonexistent.invalid"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_lrsuite(*args, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*lrsuite(), *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=_environment())


def start_lrsuite(*args) -> subprocess.Popen:
    return subprocess.Popen([*lrsuite(), *map(str, args)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_environment())


def run_all(commands: dict) -> dict:
    """{key: argv} -> {key: CompletedProcess}, `PARALLEL` processes at a time."""
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {key: pool.submit(run_lrsuite, *argv) for key, argv in commands.items()}
        return {key: future.result() for key, future in futures.items()}


def tail(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\nstdout: {result.stdout[-1500:]}\nstderr: {result.stderr[-3000:]}"


def snapshot(run_dir: Path) -> dict[str, bytes | None]:
    """Every file of a run directory by relative path; the bytes of the main three."""
    files = {str(p.relative_to(run_dir)): None for p in run_dir.rglob("*") if p.is_file()}
    files.update({name: (run_dir / name).read_bytes() for name in RUN_FILES})
    return files


def write_demo_data(domain: str, folder: Path) -> Path:
    return get_domain(domain).write_demo_data(folder)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> dict[str, Path]:
    """Each domain's generated demo data, in its local format."""
    root = tmp_path_factory.mktemp("demo-data")
    return {domain: write_demo_data(domain, root / domain) for domain in DOMAINS}


@dataclass
class GoodRuns:
    output: Path
    run_dirs: dict[str, Path]
    before: dict[str, dict[str, bytes | None]]


@pytest.fixture(scope="session")
def good_runs(tmp_path_factory, demo_data) -> GoodRuns:
    """One completed run named X per domain, and a snapshot of its files."""
    output = tmp_path_factory.mktemp("good-runs")
    results = run_all({
        domain: ["train", domain, "--data", demo_data[domain], "--output", output,
                 "--run-name", GOOD_RUN, *TINY]
        for domain in DOMAINS
    })
    run_dirs = {}
    for domain, result in results.items():
        assert result.returncode == 0, f"{domain}: {tail(result)}"
        run_dirs[domain] = output / domain / GOOD_RUN
        for name in RUN_FILES:
            assert (run_dirs[domain] / name).is_file(), (domain, name)
    return GoodRuns(output, run_dirs, {d: snapshot(p) for d, p in run_dirs.items()})
