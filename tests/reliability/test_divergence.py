"""`--lr 10` diverges in every domain: status `diverged` within the first epoch, exit 0,
the output says so, and the run directory keeps its summary and TensorBoard events.

tests/common/test_callbacks.py checks the same on the toy regression, in process; this
module runs the real command on each domain's own model and data.
"""

from __future__ import annotations

import json

import pytest

from tests.reliability.conftest import DOMAINS, run_all, tail

# Per domain, the optimizer (and flags) under which a rate of 10 blows the tiny model up;
# measured with 20 steps per epoch, seed 42: the step at which the watch fired.
SETTINGS = {
    # Plain SGD: each step is 10x the gradient, so the first steps overshoot by orders of
    # magnitude; cross-entropy went from 7.6 to a smoothed 3e5 (watch fired at step 4, the
    # first it may). Adam diverges at the same step but takes more CPU time.
    "image_classification": ["--optimizer", "sgd"],
    # Adam, on the default n-gram bag: BCE from 0.65 to a smoothed 96 (step 4). SGD at 10
    # kills its ReLU layer in a few steps instead: the loss settles near 0.9, no blow-up,
    # val accuracy 0.5 (with --model cnn, SGD diverges at step 4, BCE to 9e15).
    "sentiment": ["--optimizer", "adam"],
    # SGD: token cross-entropy from 3.4 to a smoothed 4.5e4 (step 4).
    "translation": ["--optimizer", "sgd"],
    # No optimizer makes this loss pass the default 4x: Dice + BCE is bounded (Dice <= 1,
    # probabilities clipped), and batch normalisation keeps the U-Net finite. SGD, momentum,
    # RMSprop, Adagrad, Adamax, Nadam and Lion all *complete* 2 x 20 steps at a rate of 10.
    # Adam collapses it to all background instead: the loss goes from 1.6 to 2.5-3.5 (and
    # val Dice to 0), that is 1.6-2.2x its start, so here the watch's factor is 1.5 (it
    # fired at step 4).
    "medical_segmentation": ["--optimizer", "adam", "--divergence-factor", "1.5"],
}
STEPS_PER_EPOCH = 20


@pytest.fixture(scope="module")
def diverged(tmp_path_factory, demo_data):
    output = tmp_path_factory.mktemp("diverged")
    results = run_all({
        domain: ["train", domain, "--smoke", "--data", demo_data[domain], "--output", output,
                 "--run-name", "hot", "--lr", "10", *SETTINGS[domain],
                 "--schedule", "constant", "--warmup-epochs", "0", "--epochs", "2",
                 "--steps-per-epoch", STEPS_PER_EPOCH, "--verbose", "0",
                 "--monitor-every", "0", "--jit-compile", "off"]
        for domain in DOMAINS
    })
    return output, results


@pytest.mark.parametrize("domain", DOMAINS)
def test_rate_of_10_diverges_within_the_first_epoch_and_keeps_the_run(diverged, domain):
    output, results = diverged
    result = results[domain]
    assert result.returncode == 0, tail(result)
    run_dir = output / domain / "hot"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged", (summary["status"], tail(result))
    assert summary["steps_per_epoch"] == STEPS_PER_EPOCH
    assert summary["steps_run"] < STEPS_PER_EPOCH  # stopped inside the first epoch
    assert summary["divergence"]["step"] < STEPS_PER_EPOCH
    assert summary["diagnosis"]["verdict"] == "too_high"
    assert f"diverged: {summary['divergence']['reason']}" in result.stdout
    assert "Traceback" not in result.stderr
    # Kept: the config, the summary, the per-step record and the TensorBoard events.
    assert json.loads((run_dir / "config.json").read_text())["learning_rate"] == 10.0
    steps = (run_dir / "steps.csv").read_text().splitlines()
    assert len(steps) == 1 + summary["steps_run"]
    events = list((run_dir / "train").glob("events.out.tfevents.*"))
    assert events and all(path.stat().st_size > 0 for path in events)
