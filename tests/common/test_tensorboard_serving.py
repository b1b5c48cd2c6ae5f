"""TensorBoard serves a run's learning-rate scalars over its HTTP API on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from common.training import run_training
from tests.toy_domain import TOY, ToyConfig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_tensorboard_serves_the_learning_rate(tmp_path):
    cfg = ToyConfig(epochs=3, output=str(tmp_path), run_name="served", verbose=0,
                    schedule="exponential", log_lr_every=4)
    run_training(TOY, cfg, announce=False)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path), "--host",
         "127.0.0.1", "--port", str(port), "--load_fast", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/data/plugin/scalars"
    try:
        tags = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                tags = get_json(f"{base}/tags")
                if any("epoch_learning_rate" in t for t in tags.values()):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert tags, "TensorBoard did not answer within 60 s"
        train_run = "toy/served/train"
        assert "epoch_learning_rate" in tags[train_run]
        assert "rate/batch_learning_rate" in tags[train_run]
        # The description written with the scalar is what TensorBoard shows under its chart.
        assert "learning rate" in tags[train_run]["rate/batch_learning_rate"]["description"]
        points = get_json(f"{base}/scalars?run={urllib.parse.quote(train_run)}&tag=epoch_learning_rate")
        rates = [value for _, _, value in points]
        assert len(rates) == 3
        assert rates[0] > rates[1] > rates[2]  # exponential decay, read back over HTTP
        assert rates[0] == pytest.approx(0.1 * 0.8, rel=1e-3)  # Keras logs it at epoch end
    finally:
        server.terminate()
        server.wait(timeout=20)


def post_json(url: str, body: dict):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "X-TensorBoard-Feature-Flags": "{}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_tensorboard_plots_a_sweeps_rate_against_its_objective(tmp_path):
    from common.sweep_hparams import write_sweep_hparams

    sweep_dir = tmp_path / "toy" / "sweeps" / "s"
    summaries = []
    for rate in (0.01, 0.1):
        cfg = ToyConfig(epochs=2, learning_rate=rate, output=str(sweep_dir.parent),
                        run_name=None, verbose=0)
        result = run_training(TOY, cfg, run_dir=sweep_dir / f"rate-{rate:g}", announce=False)
        summaries.append(result.summary)
    write_sweep_hparams(sweep_dir, summaries)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(sweep_dir), "--host",
         "127.0.0.1", "--port", str(port), "--load_fast", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/data/plugin/hparams"
    try:
        experiment, deadline = None, time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                experiment = post_json(f"{base}/experiment", {"experimentName": ""})
                if experiment.get("hparamInfos"):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert experiment and experiment.get("hparamInfos"), "no HParams experiment served"
        assert experiment["hparamInfos"][0]["name"] == "learning_rate"
        objective = TOY.objective
        groups = post_json(f"{base}/session_groups", {
            "experimentName": "", "startIndex": 0, "sliceSize": 10,
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                "STATUS_RUNNING"],
            "colParams": [{"hparam": "learning_rate"},
                          {"metric": {"group": "", "tag": f"sweep/{objective}"}}]})
        points = {}
        for group in groups["sessionGroups"]:
            (value,) = [m["value"] for m in group["metricValues"]
                        if m["name"]["tag"] == f"sweep/{objective}"]
            points[group["hparams"]["learning_rate"]] = value
        expected = {s["learning_rate"]: s[objective] for s in summaries}
        assert points == pytest.approx(expected, rel=1e-5)  # rate against metric, per run
    finally:
        server.terminate()
        server.wait(timeout=30)
