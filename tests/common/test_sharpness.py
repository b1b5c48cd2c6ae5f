"""The sharpness probe against explicit Hessians, its thresholds against the dynamics
they come from, the callback's files, and the diagnosis it feeds."""

from __future__ import annotations

import csv
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import diagnosis as D
from common import sharpness as S
from common.config import TrainConfig
from common.sharpness_callback import SHARPNESS_FIELDS, SharpnessProbe
from common.training import run_training
from tests.jax_subprocess import run_on_jax
from tests.toy_domain import TOY, ToyConfig

MSE = keras.losses.MeanSquaredError()


def quadratic_problem(eigenvalues, seed=1):
    """A linear least-squares loss mean((X w - y)^2) whose Hessian 2 X^T X / n has exactly
    the given eigenvalues (n = d rows, X = sqrt(n/2) Q diag(sqrt(lambda)) Q^T)."""
    d = len(eigenvalues)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    x = np.sqrt(d / 2) * q @ np.diag(np.sqrt(eigenvalues)) @ q.T
    y = rng.normal(size=(d, 1))
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1, use_bias=False)])
    return model, tf.constant(x, tf.float32), tf.constant(y, tf.float32)


def explicit_hessian(model, loss_fn, x, y) -> np.ndarray:
    """The full Hessian as the Jacobian of the flattened gradient (weights in order)."""
    weights = model.trainable_weights
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            loss = loss_fn(y, model(x, training=False))
        flat = tf.concat([tf.reshape(g, [-1]) for g in inner.gradient(loss, weights)], 0)
    size = int(flat.shape[0])
    blocks = outer.jacobian(flat, weights)
    return np.concatenate([tf.reshape(b, [size, -1]).numpy() for b in blocks], axis=1)


def top(eigenvalues) -> float:
    """The most positive eigenvalue (P^-1 H's are real: it is similar to a symmetric one)."""
    return float(np.max(np.real(np.asarray(eigenvalues))))


def tiny_network(seed=3):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
                              keras.layers.Dense(1)])
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(size=(16, 3)), tf.float32)
    y = tf.constant(rng.normal(size=(16, 1)), tf.float32)
    return model, x, y


# --- thresholds ---------------------------------------------------------------------


def spectral_radius(update_matrix: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(update_matrix))))


def iteration_matrix(kind: str, lr: float, h: float, beta: float) -> np.ndarray:
    """The linear map of one step on a 1-D quadratic of curvature h: on (x_t, x_{t-1}) for
    SGD, heavy ball and Nesterov; on (x_t, m_t) for Adam's averaged momentum, with h the
    preconditioned curvature."""
    a = lr * h
    if kind == "sgd":
        return np.array([[1 - a]])
    if kind == "heavy_ball":  # x+ = x - a x + beta (x - x_prev)
        return np.array([[1 - a + beta, -beta], [1, 0]])
    if kind == "nesterov":  # y = x + beta (x - x_prev); x+ = y - a y
        return np.array([[(1 - a) * (1 + beta), -(1 - a) * beta], [1, 0]])
    # Adam: m+ = beta m + (1 - beta) h x; x+ = x - lr m+
    return np.array([[1 - a * (1 - beta), -lr * beta], [(1 - beta) * h, beta]])


@pytest.mark.parametrize("kind,threshold", [
    ("sgd", lambda lr, b: S.sgd_threshold(lr)),
    ("heavy_ball", S.heavy_ball_threshold),
    ("nesterov", S.nesterov_threshold),
    ("adam", S.adam_threshold),
])
def test_each_threshold_is_where_its_update_turns_unstable(kind, threshold):
    lr, beta = 0.01, 0.9
    for factor, stable in ((0.98, True), (1.02, False)):
        matrix = iteration_matrix(kind, lr, factor * threshold(lr, beta), beta)
        assert (spectral_radius(matrix) < 1) == stable, (kind, factor)


def test_adam_threshold_is_38_over_the_rate_at_beta_0_9():
    assert S.adam_threshold(1e-3, 0.9) == pytest.approx(38_000)
    assert S.sgd_threshold(0.1) == pytest.approx(20.0)


def test_rules_follow_the_optimizer():
    assert S.stability_rule(keras.optimizers.SGD(0.1)).label == "2/lr"
    rule = S.stability_rule(keras.optimizers.SGD(0.1, momentum=0.9))
    assert rule.label == "3.8/lr" and rule.threshold(0.1) == pytest.approx(38.0)
    adam = S.stability_rule(keras.optimizers.Adam(1e-3))
    assert adam.preconditioned and adam.label == "38/lr"
    assert S.stability_rule(keras.optimizers.AdamW(1e-3)).preconditioned
    assert math.isnan(S.stability_rule(keras.optimizers.Lion(1e-3)).threshold(1e-3))


# --- the eigenvalue -----------------------------------------------------------------


def test_quadratic_top_eigenvalue_within_one_percent():
    model, x, y = quadratic_problem([10.0, 7.0, 3.0, 1.0, 0.5])
    estimate = S.HessianProbe(model, MSE).top_eigenvalue(x, y)
    assert estimate.eigenvalue == pytest.approx(10.0, rel=0.01)
    assert estimate.iterations <= S.DEFAULT_ITERATIONS


def test_two_layer_network_matches_the_explicit_hessian_within_two_percent():
    model, x, y = tiny_network()
    expected = top(np.linalg.eigvalsh(explicit_hessian(model, MSE, x, y)))
    probe = S.HessianProbe(model, MSE)
    assert probe.top_eigenvalue(x, y).eigenvalue == pytest.approx(expected, rel=0.02)


def test_warm_start_converges_in_fewer_iterations_and_traces_once():
    model, x, y = tiny_network()
    probe = S.HessianProbe(model, MSE)
    first = probe.top_eigenvalue(x, y)
    second = probe.top_eigenvalue(x, y)
    assert second.iterations < first.iterations or first.iterations == S.MIN_ITERATIONS
    fresh = S.HessianProbe(model, MSE)  # a new probe for the same model reuses the trace
    fresh.top_eigenvalue(x, y)
    assert probe.traced_function().experimental_get_tracing_count() == 1


def train_a_few_adam_steps(model, x, y, steps=5):
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=MSE)
    model.fit(x, y, batch_size=16, epochs=steps, verbose=0, shuffle=False)
    return model.optimizer


def test_preconditioned_sharpness_matches_explicit_p_inverse_h():
    model, x, y = tiny_network()
    optimizer = train_a_few_adam_steps(model, x, y)
    weights = model.trainable_weights
    steps = int(optimizer.iterations.numpy())
    # What Keras's Adam divides each gradient by, written out from its update rule.
    p = np.concatenate([
        ((np.sqrt(optimizer._velocities[optimizer._get_variable_index(w)].numpy())
          + optimizer.epsilon) / np.sqrt(1 - optimizer.beta_2**steps)).ravel()
        for w in weights])
    expected = top(np.linalg.eigvals(np.diag(1 / p) @ explicit_hessian(model, MSE, x, y)))
    diagonal = S.preconditioner(optimizer, weights)
    assert np.concatenate([d.ravel() for d in diagonal]) == pytest.approx(p, rel=1e-6)
    probe = S.HessianProbe(model, MSE, iterations=60)
    assert probe.top_eigenvalue(x, y, diagonal).eigenvalue == pytest.approx(expected, rel=0.02)
    reading = S.measure(probe, optimizer, (x, y))
    assert reading["preconditioned"] and reading["threshold"] == pytest.approx(38 / 0.01)
    assert reading["sharpness"] == pytest.approx(expected, rel=0.02)


def test_adam_before_its_first_step_has_no_reading():
    model, x, y = tiny_network()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=MSE)
    model.optimizer.build(model.trainable_weights)
    assert S.measure(S.HessianProbe(model, MSE), model.optimizer, (x, y)) is None


# --- leaves training alone ------------------------------------------------------------


def dropout_network(seed=5):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dropout(0.5), keras.layers.Dense(1)])
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=MSE)
    return model, x, y


def global_seed_state():
    from keras.src.backend.common import global_state

    generator = global_state.get_global_attribute("global_seed_generator")
    return None if generator is None else np.array(generator.state.numpy())


def test_a_probe_leaves_weights_optimizer_and_seed_state_untouched():
    model, x, y = dropout_network()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    keras.random.normal((1,))  # make the global seed generator exist
    before = [v.numpy().copy() for v in model.variables]  # incl. dropout's seed state
    optimizer_before = [v.numpy().copy() for v in model.optimizer.variables]
    seed_before = global_seed_state()
    probe = S.HessianProbe(model, MSE)
    for _ in range(2):
        S.measure(probe, model.optimizer, (tf.constant(x[:16]), tf.constant(y[:16])))
    for old, new in zip(before, model.variables, strict=True):
        np.testing.assert_array_equal(old, new.numpy())
    for old, new in zip(optimizer_before, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(old, new.numpy())
    np.testing.assert_array_equal(seed_before, global_seed_state())


def test_training_with_the_probe_is_bit_identical_to_training_without(tmp_path):
    finals = []
    for every in (0, 1):
        model, x, y = dropout_network()
        probe_batch = (tf.constant(x[:16]), tf.constant(y[:16]))
        callbacks = [SharpnessProbe(tmp_path / f"every{every}", every, probe_batch, MSE)] \
            if every else []
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, callbacks=callbacks)
        finals.append([w.numpy() for w in model.weights])
        if every:
            assert len(callbacks[0].records) == 7  # steps 1..7: Adam has no moment at step 0
    for a, b in zip(*finals, strict=True):
        np.testing.assert_array_equal(a, b)


# --- in a run -------------------------------------------------------------------------


def read_rows(path):
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_run_training_writes_sharpness_csv_events_and_summary(tmp_path):
    cfg = ToyConfig(optimizer="adam", learning_rate=0.05, schedule="cosine", epochs=2,
                    steps_per_epoch=6, sharpness_every=2, monitor_every=0,
                    output=str(tmp_path), verbose=0)
    result = run_training(TOY, cfg)
    rows = read_rows(result.run_dir / "sharpness.csv")
    assert tuple(rows[0]) == SHARPNESS_FIELDS
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8, 10]  # Adam: none at step 0
    assert [int(r["epoch"]) for r in rows] == [1, 1, 2, 2, 2]
    # The rate is the step's own (the cosine schedule's), as steps.csv records it.
    rates = {int(r["step"]): float(r["learning_rate"])
             for r in read_rows(result.run_dir / "steps.csv")}
    for row in rows:
        assert float(row["learning_rate"]) == pytest.approx(rates[int(row["step"])], rel=1e-5)
        assert float(row["threshold"]) * float(row["learning_rate"]) == pytest.approx(38.0)
        assert float(row["sharpness"]) > 0
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["sharpness"]["rule"] == "38/lr" and summary["sharpness"]["preconditioned"]
    assert len(summary["sharpness"]["records"]) == 5
    assert summary["diagnosis"]["sharpness"]["readings"] == 5

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(result.run_dir / "train"), size_guidance={"tensors": 0})
    events.Reload()
    for tag in ("sharpness", "stability_threshold", "sharpness_over_threshold"):
        assert [e.step for e in events.Tensors(f"dynamics/{tag}")] == [2, 4, 6, 8, 10]
        assert events.SummaryMetadata(f"dynamics/{tag}").summary_description
    logged = [float(tf.make_ndarray(e.tensor_proto))
              for e in events.Tensors("dynamics/sharpness")]
    assert logged == pytest.approx([float(r["sharpness"]) for r in rows], rel=1e-6)


def full_batch_quadratic(tmp_path, rate_over_limit: float):
    """Gradient descent on the toy's least squares with the whole training set as the
    batch: a constant Hessian, so its top eigenvalue decides stability exactly."""
    cfg = ToyConfig(examples=64, batch_size=64, epochs=30, sharpness_every=1, monitor_every=0,
                    log_lr_every=0, output=str(tmp_path), verbose=0)
    bundle = TOY.load_data(cfg)
    x, _ = next(iter(bundle.train))
    design = np.concatenate([x.numpy(), np.ones((64, 1), "float32")], axis=1)
    top = float(np.max(np.linalg.eigvalsh(2 * design.T @ design / 64)))
    cfg = cfg.replace(learning_rate=rate_over_limit * 2 / top)
    return top, run_training(TOY, cfg, bundle=bundle, save_model=False, announce=False)


def test_gradient_descent_above_two_over_lambda_is_too_high_with_sharpness_evidence(tmp_path):
    top, result = full_batch_quadratic(tmp_path, 1.5)
    diagnosis = result.summary["diagnosis"]
    assert diagnosis["verdict"] == "too_high"
    assert any(e.startswith("sharpness 1.5x over") for e in diagnosis["evidence"])
    records = result.summary["sharpness"]["records"]
    assert records[0]["sharpness"] == pytest.approx(top, rel=0.01)
    assert records[0]["step"] == 0  # SGD: a reading before the first update too


def test_gradient_descent_below_two_over_lambda_is_good(tmp_path):
    top, result = full_batch_quadratic(tmp_path, 0.5)
    diagnosis = result.summary["diagnosis"]
    assert diagnosis["verdict"] == "good", diagnosis["evidence"]
    assert diagnosis["sharpness"]["max_ratio"] == pytest.approx(0.5, rel=0.02)


# --- diagnosis on crafted readings ----------------------------------------------------

STEPS = np.arange(200)
GOOD_CURVE = (0.1 + 0.9 * np.exp(-STEPS / 20)).tolist()


def readings(ratios):
    return [{"sharpness": r * 20.0, "threshold": 20.0} for r in ratios]


def test_sharpness_over_its_threshold_at_enough_steps_is_too_high():
    share = D.SHARPNESS_OVER_SHARE
    count = 20
    over = int(math.ceil(share * count))
    ratios = [0.9] * (count - over) + [D.SHARPNESS_OVER_FACTOR * 1.5] * over
    report = D.diagnose(GOOD_CURVE, sharpness_records=readings(ratios))
    assert report["verdict"] == "too_high"
    assert any(e.startswith("sharpness 1.8x over") for e in report["evidence"])
    fewer = [0.9] + ratios[:-1]  # one reading short of the share: hovering, not over
    assert D.diagnose(GOOD_CURVE, sharpness_records=readings(fewer))["verdict"] == "good"
    hovering = [D.SHARPNESS_OVER_FACTOR * 0.95] * count  # the edge of stability itself
    assert D.diagnose(GOOD_CURVE, sharpness_records=readings(hovering))["verdict"] == "good"


def test_sharpness_that_overshoots_then_settles_at_its_threshold_is_good():
    # The shape measured on rt_polarity with Adam at 1e-3 (every 30 steps, 3 epochs): the
    # sharpness climbs, overshoots to 10x and falls back to hover at the threshold.
    measured = [0.18, 0.24, 0.28, 0.46, 0.93, 1.52, 6.26, 10.21, 6.25, 5.27, 0.33, 1.19,
                1.16, 0.99, 1.06]
    figures = D.sharpness_figures(readings(measured))
    assert figures["share_over"] >= D.SHARPNESS_OVER_SHARE  # over often, mid-run ...
    assert figures["settled_ratio"] == pytest.approx(1.06)  # ... at the threshold at the end
    assert D.diagnose(GOOD_CURVE, sharpness_records=readings(measured))["verdict"] == "good"
    # The same readings with the end still over (1e-2 on the same task) are too high.
    still_over = measured[:10] + [15.89, 5.69, 12.24, 8.22, 1.08]
    assert D.diagnose(GOOD_CURVE, sharpness_records=readings(still_over))["verdict"] == "too_high"


def test_sharpness_two_orders_under_with_a_slow_fall_is_too_low():
    slow = (1.0 - 0.3 * (1 - np.exp(-STEPS / 60))).tolist()  # falls ~28%: no other sign
    assert D.diagnose(slow)["verdict"] == "good"
    under = readings([D.SHARPNESS_UNDER_FACTOR * 0.5] * 10)
    report = D.diagnose(slow, sharpness_records=under)
    assert report["verdict"] == "too_low"
    assert any("of its stability threshold" in e for e in report["evidence"])
    # A fast fall is fine even far under the threshold; so is a ratio above the factor.
    assert D.diagnose(GOOD_CURVE, sharpness_records=under)["verdict"] == "good"
    near = readings([D.SHARPNESS_UNDER_FACTOR * 2] * 10)
    assert D.diagnose(slow, sharpness_records=near)["verdict"] == "good"


def test_readings_without_a_threshold_are_ignored():
    report = D.diagnose(GOOD_CURVE, sharpness_records=[{"sharpness": 5.0,
                                                        "threshold": math.nan}])
    assert report["verdict"] == "good" and "sharpness" not in report


# --- config ---------------------------------------------------------------------------


def test_sharpness_every_is_a_validated_flag():
    assert TrainConfig().sharpness_every == 0
    with pytest.raises(ValueError, match="sharpness_every must be >= 0"):
        TrainConfig(sharpness_every=-1)
    import argparse

    from common.cli_args import add_config_flags, config_from_args

    parser = argparse.ArgumentParser()
    add_config_flags(parser, TrainConfig)
    args = parser.parse_args(["--sharpness-every", "25"])
    assert config_from_args(TrainConfig, args).sharpness_every == 25


# --- JAX ------------------------------------------------------------------------------


def test_jax_power_iteration_on_a_quadratic():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    eigenvalues = np.array([10.0, 7.0, 3.0, 1.0, 0.5])
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(5, 5)))
    hessian = jnp.asarray(q @ np.diag(eigenvalues) @ q.T, jnp.float32)

    def loss(params):
        return 0.5 * params[0] @ hessian @ params[0]

    params = [jnp.ones(5, jnp.float32)]

    @jax.jit
    def run(vectors):
        return S.power_iterate(lambda v: S.hessian_vector_product(loss, params, v), vectors,
                               S.DEFAULT_ITERATIONS, S.DEFAULT_TOLERANCE)

    estimate, _, done, magnitude = run(S.initial_vectors([np.zeros(5)]))
    assert float(magnitude) == pytest.approx(10.0, rel=0.01)
    assert float(estimate) == pytest.approx(10.0, rel=0.01)
    assert 1 <= int(done) <= S.DEFAULT_ITERATIONS


JAX_SCRIPT = """
import jax, jax.numpy as jnp, keras, numpy as np
from common import sharpness as S
keras.utils.set_random_seed(3)
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
                          keras.layers.Dense(1)])
rng = np.random.default_rng(3)
x = rng.normal(size=(16, 3)).astype("float32")
y = rng.normal(size=(16, 1)).astype("float32")
loss_fn = keras.losses.MeanSquaredError()
weights = [w.value for w in model.trainable_weights]
shapes = [w.shape for w in weights]
sizes = [int(np.prod(s)) for s in shapes]

def flat_loss(flat):
    parts = jnp.split(flat, np.cumsum(sizes)[:-1])
    params = [p.reshape(s) for p, s in zip(parts, shapes)]
    prediction, _ = model.stateless_call(params, [], x, training=False)
    return loss_fn(y, prediction)

flat = jnp.concatenate([w.reshape(-1) for w in weights])
eigenvalues = np.linalg.eigvalsh(np.asarray(jax.hessian(flat_loss)(flat)))
expected = eigenvalues.max()  # the top (most positive) one
probe = S.HessianProbe(model, loss_fn)
estimate = probe.top_eigenvalue(x, y)
from common.sharpness_callback import SharpnessProbe
import tempfile
model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss_fn)
callback = SharpnessProbe(tempfile.mkdtemp(), 1, (x[:8], y[:8]), loss_fn)
model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False, callbacks=[callback])
assert [r["step"] for r in callback.records] == [1, 2, 3], callback.records
assert all(r["sharpness"] > 0 for r in callback.records)
print(estimate.eigenvalue, expected)
"""


def test_keras_on_jax_matches_the_explicit_hessian(tmp_path):
    estimate, expected = map(float, run_on_jax(JAX_SCRIPT, tmp_path)[-2:])
    assert estimate == pytest.approx(expected, rel=0.02)


def test_batch_norm_is_probed_in_training_mode_and_its_statistics_kept():
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras.layers.BatchNormalization(), keras.layers.Activation("tanh"),
                              keras.layers.Dense(1)])
    _, x, y = tiny_network(seed=7)
    statistics = [v.numpy().copy() for v in model.non_trainable_weights]
    estimate = S.HessianProbe(model, MSE, iterations=60).top_eigenvalue(x, y)
    for old, new in zip(statistics, model.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(old, new.numpy())

    def training_loss(y_true, prediction):
        return MSE(y_true, prediction)

    # Expected: the Hessian of the loss with the batch's own statistics (training=True).
    weights = model.trainable_weights
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            loss = training_loss(y, model(x, training=True))
        flat = tf.concat([tf.reshape(g, [-1]) for g in inner.gradient(loss, weights)], 0)
    hessian = np.concatenate([tf.reshape(b, [int(flat.shape[0]), -1]).numpy()
                              for b in outer.jacobian(flat, weights)], axis=1)
    assert estimate.eigenvalue == pytest.approx(top(np.linalg.eigvalsh(hessian)), rel=0.02)


def test_a_dominant_negative_curvature_still_gives_the_top_eigenvalue():
    eigenvalues = np.array([-8.0, 5.0, 2.0, 1.0, 0.5])
    d = len(eigenvalues)
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1, use_bias=False)])

    def weighted_square(coefficients, prediction):  # Hessian diag(2 c_i / d) in the kernel
        return tf.reduce_mean(coefficients * tf.square(prediction))

    x = tf.eye(d)  # row i reads kernel entry i
    coefficients = tf.constant(eigenvalues[:, None] * d / 2, tf.float32)
    estimate = S.HessianProbe(model, weighted_square).top_eigenvalue(x, coefficients)
    assert estimate.eigenvalue == pytest.approx(5.0, rel=0.01)


@pytest.mark.parametrize("eigenvalues", [[-8.0, 8.0, 2.0, 1.0, 0.5], [8.0, -7.9, 2.0, 1.0, 0.5],
                                         [-8.0, 7.9, 2.0, 1.0, 0.5]])
def test_opposite_curvatures_of_equal_size_still_give_the_top_eigenvalue(eigenvalues):
    # Power iteration on H then settles on a mix of the two eigenvectors whose Rayleigh
    # quotient can be anything between -8 and 8 (near 0 was seen on CIFAR after a spike).
    d = len(eigenvalues)
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1, use_bias=False)])

    def weighted_square(coefficients, prediction):  # Hessian diag(2 c_i / d) in the kernel
        return tf.reduce_mean(coefficients * tf.square(prediction))

    x = tf.eye(d)
    coefficients = tf.constant(np.array(eigenvalues)[:, None] * d / 2, tf.float32)
    estimate = S.HessianProbe(model, weighted_square, iterations=60).top_eigenvalue(
        x, coefficients)
    assert estimate.eigenvalue == pytest.approx(max(eigenvalues), rel=0.01)


def test_the_shifted_run_is_not_stopped_by_its_own_large_shift():
    # A spread of curvatures of both signs: the unshifted run cannot settle, and the
    # shifted one (by about 8) must keep going until the top eigenvalue itself settles.
    eigenvalues = [8.0, -8.0, 7.0, -7.0, 6.0, -6.0, 3.0, -3.0, 1.0]
    d = len(eigenvalues)
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1, use_bias=False)])

    def weighted_square(coefficients, prediction):
        return tf.reduce_mean(coefficients * tf.square(prediction))

    x = tf.eye(d)
    coefficients = tf.constant(np.array(eigenvalues)[:, None] * d / 2, tf.float32)
    estimate = S.HessianProbe(model, weighted_square, iterations=60).top_eigenvalue(
        x, coefficients)
    assert estimate.eigenvalue == pytest.approx(8.0, rel=0.01)
