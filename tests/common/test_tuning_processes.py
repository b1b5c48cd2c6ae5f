"""Searches across processes: resume after a real SIGKILL, and Keras Tuner's distributed
mode (a chief oracle and two workers on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The toy domain is not in the registry, so the search is started from Python.
SCRIPT = """
import sys, time
from pathlib import Path
from common.tuning import run_search
from tests.toy_domain import TOY

output, name, trials, gate = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if gate != "-":  # wait (imports done) until the test says go, so that workers overlap
    Path(gate + "." + sys.argv[5]).touch()
    while not Path(gate).exists():
        time.sleep(0.05)
result = run_search(TOY, fixed={"output": output, "monitor_every": 0, "log_lr_every": 0,
                                "steps_per_epoch": 16},
                    tuner="random", name=name, max_trials=trials, max_epochs=3,
                    space={"learning_rate": {"min": 1e-3, "max": 0.5}})
print("best", result.best and result.best["trial"])
"""


def start(script: Path, args: list[str], env_extra: dict[str, str] | None = None,
          log: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3",
           "CUDA_VISIBLE_DEVICES": "", **(env_extra or {})}
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        if name not in (env_extra or {}):
            env.pop(name, None)
    stream = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen([sys.executable, str(script), *args], cwd=REPO, env=env,
                            stdout=stream, stderr=subprocess.STDOUT)


def read_events(search_dir: Path) -> list[dict]:
    path = search_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(condition, timeout: float, what: str, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            if proc.poll() not in (None, 0):
                raise AssertionError(f"a process exited with {proc.returncode} while "
                                     f"waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def script(tmp_path) -> Path:
    path = tmp_path / "search.py"
    path.write_text(SCRIPT)
    return path


def test_resume_after_sigkill_runs_no_finished_trial_again(tmp_path, script):
    search_dir = tmp_path / "toy" / "tuning" / "killed"
    args = [str(tmp_path), "killed", "6", "-"]
    first = start(script, args, log=tmp_path / "first.log")
    try:
        # Kill during the third trial: two have ended, a third has started.
        def in_third_trial():
            kinds = [e["event"] for e in read_events(search_dir)]
            return kinds.count("end") >= 2 and kinds.count("start") > kinds.count("end")

        wait_for(in_third_trial, 180, "the third trial", [first])
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    killed_at = time.time()
    done_before = {e["trial"] for e in read_events(search_dir) if e["event"] == "end"}
    assert len(done_before) >= 2

    second = start(script, args, log=tmp_path / "second.log")
    assert second.wait(timeout=180) == 0, (tmp_path / "second.log").read_text()[-2000:]

    after = [e for e in read_events(search_dir) if e["time"] > killed_at]
    restarted = {e["trial"] for e in after if e["event"] == "start"}
    assert not restarted & done_before, "a finished trial ran again"
    results = {json.loads(p.read_text())["trial"]: json.loads(p.read_text())
               for p in (search_dir / "results").glob("trial_*.json")}
    assert len(results) == 6 and all(r["status"] in ("completed", "diverged")
                                     for r in results.values())
    # One run directory per trial: the killed one was continued, not duplicated.
    assert sorted(p.name for p in (search_dir / "trials").iterdir()) == sorted(
        f"trial_{t}" for t in results)
    for r in results.values():
        summary = json.loads((Path(r["run_dirs"][0]) / "summary.json").read_text())
        if summary["status"] == "completed":
            assert summary["epochs_run"] == 3 and len(summary["history"]["loss"]) == 3
    assert (search_dir / "best.json").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_chief_and_workers(script: Path, args_for, tmp_path: Path, timeout: float) -> None:
    """Start a Keras Tuner chief and two workers on 127.0.0.1 running `script` with
    `args_for(gate, tuner_id)`, let them go together once all three have imported, and
    wait until each exits 0 (its log's tail in the failure message)."""
    port, gate, procs = str(free_port()), tmp_path / "go", {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = {"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
                   "KERASTUNER_ORACLE_PORT": port}
            procs[tuner_id] = start(script, args_for(gate, tuner_id), env,
                                    log=tmp_path / f"{tuner_id}.log")
        wait_for(lambda: all(Path(f"{gate}.{t}").exists() for t in procs), 180,
                 "all three processes to import", procs.values())
        gate.touch()
        for tuner_id, proc in procs.items():
            log = tmp_path / f"{tuner_id}.log"
            assert proc.wait(timeout=timeout) == 0, f"{tuner_id}: {log.read_text()[-2000:]}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()


def test_a_chief_and_two_workers_complete_a_search_together(tmp_path, script):
    run_chief_and_workers(script, lambda gate, tuner_id: [str(tmp_path), "shared", "4", str(gate),
                                                          tuner_id], tmp_path, timeout=150)
    search_dir = tmp_path / "toy" / "tuning" / "shared"
    results = [json.loads(p.read_text()) for p in (search_dir / "results").glob("trial_*.json")]
    assert len(results) == 4
    assert {r["tuner_id"] for r in results} == {"tuner0", "tuner1"}  # both workers trained
    starts = [e["trial"] for e in read_events(search_dir) if e["event"] == "start"]
    assert sorted(starts) == sorted({r["trial"] for r in results}), "a trial ran twice"
    best = json.loads((search_dir / "best.json").read_text())  # the chief wrote it
    assert best["trials"] == 4
    assert "best" in (tmp_path / "chief.log").read_text()
