"""Per-batch loss recovery, divergence watch and training-dynamics logging."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.callbacks import DivergenceWatch, StepRecorder, recover_batch_loss
from common.training import run_training
from tests.toy_domain import TOY, ToyConfig


def test_recover_batch_loss_inverts_a_running_mean():
    losses = [4.0, 1.0, 3.0, 0.5]
    means = np.cumsum(losses) / np.arange(1, 5)
    recovered = [recover_batch_loss(means[i], means[i - 1] if i else None, i) for i in range(4)]
    assert recovered == pytest.approx(losses)


def test_recorder_gives_each_batch_its_own_loss_not_the_running_mean():
    # With a zero rate the weights never move, so each batch's true loss is known.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = (rng.normal(size=(40, 1)) * np.arange(1, 41)[:, None]).astype("float32")  # growing losses
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    recorder = StepRecorder(log_every=0)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8, drop_remainder=True)
    history = model.fit(data, epochs=1, verbose=0, callbacks=[recorder])
    predictions = model.predict(x, verbose=0)
    truth = [float(np.mean((predictions[i:i + 8] - y[i:i + 8]) ** 2)) for i in range(0, 40, 8)]
    assert recorder.losses == pytest.approx(truth, rel=1e-4)
    # The running mean Keras reports differs from the last batch's own loss.
    assert history.history["loss"][-1] != pytest.approx(truth[-1], rel=1e-2)
    assert recorder.steps == [0, 1, 2, 3, 4]


def test_recorder_reads_the_rate_each_step_used():
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([2], [0.1, 0.01])
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    recorder = StepRecorder(log_every=0)
    model.fit(np.ones((20, 2)), np.ones((20, 1)), batch_size=4, verbose=0, callbacks=[recorder])
    # PiecewiseConstantDecay: steps 0..2 use 0.1, later steps 0.01.
    assert recorder.learning_rates == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01])


def test_recorder_fills_a_schedules_rates_in_bulk_for_csv_and_tensorboard(tmp_path):
    # The rates of a schedule are computed at each epoch's end in one traced call:
    # every step of the CSV and of the events must still carry the rate it used.
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    recorder = StepRecorder(tmp_path / "train", tmp_path / "steps.csv", log_every=1)
    model.fit(np.ones((12, 2)), np.ones((12, 1)), batch_size=4, epochs=2, verbose=0,
              callbacks=[recorder])
    expected = [0.1 * 0.5**step for step in range(6)]
    assert recorder.learning_rates == pytest.approx(expected, rel=1e-6)
    import csv

    with (tmp_path / "steps.csv").open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx(expected, rel=1e-6)
    assert [int(r["epoch"]) for r in rows] == [1, 1, 1, 2, 2, 2]  # as history counts them
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "train"), size_guidance={"tensors": 0})
    events.Reload()
    logged = {e.step: float(tf.make_ndarray(e.tensor_proto))
              for e in events.Tensors("rate/batch_learning_rate")}
    assert sorted(logged) == list(range(6))
    assert [logged[s] for s in range(6)] == pytest.approx(expected, rel=1e-6)
    # The same rates as powers of ten, for a linear axis across a sweep's decades.
    log10 = {e.step: float(tf.make_ndarray(e.tensor_proto))
             for e in events.Tensors("rate/log10_learning_rate")}
    assert [log10[s] for s in range(6)] == pytest.approx([math.log10(r) for r in expected])
    description = events.SummaryMetadata("rate/log10_learning_rate").summary_description
    assert "log10" in description and "linear axis" in description
    # Described once, in the first event: TensorBoard keeps a tag's first metadata, and a
    # description in every event would triple the file.
    described = [value.tag for file in (tmp_path / "train").glob("events.out.tfevents.*")
                 for event in tf.compat.v1.train.summary_iterator(str(file))
                 for value in event.summary.value if value.metadata.summary_description]
    assert sorted(described) == sorted(["loss/batch_loss", "rate/batch_learning_rate",
                                        "rate/log10_learning_rate"])


def test_recorder_sees_a_plain_rate_lowered_between_epochs():
    class HalveAtEpochEnd(keras.callbacks.Callback):  # what ReduceLROnPlateau does
        def on_epoch_end(self, epoch, logs=None):
            self.model.optimizer.learning_rate = self.model.optimizer.learning_rate * 0.5

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    recorder = StepRecorder(log_every=0)
    model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=4, epochs=3, verbose=0,
              callbacks=[recorder, HalveAtEpochEnd()])
    assert recorder.learning_rates == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_divergence_watch_stops_a_rate_of_10_within_one_epoch(tmp_path, capsys):
    cfg = ToyConfig(learning_rate=10.0, epochs=3, output=str(tmp_path), run_name="hot",
                    verbose=0)
    result = run_training(TOY, cfg)
    summary = result.summary
    assert summary["status"] == "diverged"
    assert summary["steps_run"] < summary["steps_per_epoch"]  # stopped inside epoch 1
    assert summary["diagnosis"]["verdict"] == "too_high"
    assert "diverged" in capsys.readouterr().out
    # What was written so far is kept: config, summary, steps and events.
    for name in ("config.json", "summary.json", "steps.csv"):
        assert (result.run_dir / name).is_file()
    assert list((result.run_dir / "train").glob("events.out.tfevents.*"))


def test_divergence_watch_ignores_a_small_noisy_loss_late_in_training():
    recorder = StepRecorder(log_every=0)
    watch = DivergenceWatch(recorder, factor=4.0)
    watch.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    losses = [1.0, 0.5, 0.1, 0.01, 0.002, 0.001, 0.001, 0.01, 0.02, 0.01]
    for step, loss in enumerate(losses):
        recorder.steps.append(step)
        recorder.losses.append(loss)
        watch.on_train_batch_end(step)
    assert not watch.diverged  # 20x its best, but far below where it started
    recorder.steps.append(len(losses))
    recorder.losses.append(math.nan)
    watch.on_train_batch_end(len(losses))
    assert watch.diverged and "nan" in watch.reason


def test_training_dynamics_logs_update_ratios_and_gradient_norm(tmp_path):
    cfg = ToyConfig(learning_rate=0.1, epochs=1, output=str(tmp_path), verbose=0,
                    monitor_every=8, steps_per_epoch=16)
    result = run_training(TOY, cfg)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(result.run_dir / "train"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    # Each scalar of the suite is in a group (Keras writes epoch_* and its graph, "keras").
    keras_tags = {"keras"} | {t for t in tags if t.startswith("epoch_")}
    assert {t for t in tags if "/" not in t} <= keras_tags
    assert {"dynamics/update_ratio/global", "dynamics/update_ratio/linear",
            "dynamics/gradient_norm", "rate/batch_learning_rate", "rate/log10_learning_rate",
            "loss/batch_loss"} <= tags
    for tag in {t for t in tags if t.split("/")[0] in ("rate", "loss", "dynamics")}:
        assert events.SummaryMetadata(tag).summary_description, tag
    # A layer's ratio names its layer and says that it is one.
    layer = events.SummaryMetadata("dynamics/update_ratio/linear").summary_description
    assert "'linear'" in layer and "layer name" in layer
    ratios = [tf.make_ndarray(e.tensor_proto)
              for e in events.Tensors("dynamics/update_ratio/global")]
    assert len(ratios) == 2 and all(0 < float(r) < 1 for r in ratios)


@pytest.mark.parametrize("warmup_epochs", [0.0, 1.0])
def test_bulk_rates_equal_the_rates_the_optimizer_reads_for_every_schedule(warmup_epochs):
    from common.callbacks import current_learning_rate, rates_at_steps
    from common.schedule_registry import build_schedule, schedule_names

    for name in schedule_names():
        if name == "plateau":
            continue  # a float rate that a callback lowers; tested above
        plan = build_schedule(name, 0.1, steps_per_epoch=5, epochs=6, warmup_epochs=warmup_epochs)
        optimizer = keras.optimizers.SGD(plan.learning_rate)
        bulk = rates_at_steps(plan.learning_rate)
        if not isinstance(plan.learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            assert bulk is None, name  # constant without warmup is a float rate
            continue
        assert bulk is not None, name
        steps = list(range(0, 31, 3))
        eager = []
        for step in steps:
            optimizer.iterations.assign(step)
            eager.append(current_learning_rate(optimizer))
        assert bulk(steps) == pytest.approx(eager, rel=1e-5, abs=1e-9), name


def test_no_bulk_rates_for_a_plain_rate():
    from common.callbacks import rates_at_steps

    assert rates_at_steps(0.1) is None
