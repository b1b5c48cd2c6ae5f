"""FLOP counts of bench/compute_efficiency.py on a tiny Conv + Dense model: the analytic
per-layer count equals the hand count, and TensorFlow's profiler agrees with it."""

import importlib.util
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
spec = importlib.util.spec_from_file_location("compute_efficiency", BENCH / "compute_efficiency.py")
ce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ce)

BATCH, SIDE, CHANNELS, FILTERS, UNITS = 4, 8, 3, 16, 10


def tiny_model():
    inputs = keras.Input((SIDE, SIDE, CHANNELS))
    x = keras.layers.Conv2D(FILTERS, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(UNITS)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss=keras.losses.MeanSquaredError())
    return model


# Forward multiply-adds x 2: the convolution's 3x3xC per output element, the dense layer's
# inputs per unit.
HAND_CONV = 2 * BATCH * SIDE * SIDE * FILTERS * 3 * 3 * CHANNELS
HAND_DENSE = 2 * BATCH * SIDE * SIDE * FILTERS * UNITS


def test_analytic_count_is_the_hand_count():
    model = tiny_model()
    images = np.ones((BATCH, SIDE, SIDE, CHANNELS), "float32")
    total, by_type = ce.analytic_forward_flops(model, images)
    assert by_type["Conv2D"] == HAND_CONV
    assert by_type["Dense"] == HAND_DENSE
    assert total == HAND_CONV + HAND_DENSE
    model(images)  # the recording wrappers are gone: a later call still works


def test_profiler_agrees_with_the_analytic_count():
    model = tiny_model()
    images = tf.ones((BATCH, SIDE, SIDE, CHANNELS))
    targets = tf.zeros((BATCH, UNITS))
    analytic, _ = ce.analytic_forward_flops(model, images)
    # Forward: the profiler also counts bias adds and the like, a few percent here.
    forward = ce.profiled_forward(model, images)
    assert analytic <= forward <= 1.10 * analytic
    # Training: about 3 x forward (input and weight gradients), within 15%.
    total, matmul = ce.profiled_train_step(model, (images, targets))
    assert abs(total - 3 * analytic) <= 0.15 * 3 * analytic
    assert 0.8 * total <= matmul <= total


def test_batch_matmul_adjoint_is_counted_with_its_contracted_size():
    a, b = tf.TensorSpec((2, 5, 7)), tf.TensorSpec((2, 5, 3))
    graph = tf.function(lambda x, y: tf.linalg.matmul(x, y, adjoint_a=True)).get_concrete_function(
        a, b).graph
    total, matmul = ce.profiled_flops(graph)
    assert matmul == 2 * 2 * 7 * 3 * 5  # output (2, 7, 3), contracted over 5
