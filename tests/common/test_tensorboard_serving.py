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
