"""Rate-free and schedule-free optimizers: optax as the oracle, convergence, the two
schedule-free sequences, saving, and the one training path."""

from __future__ import annotations

import csv
import math

import keras
import numpy as np
import pytest

from common.config import OPTIMIZER_NAMES
from common.optim import build_optimizer
from common.optimizers import (
    OPTIMIZERS,
    DAdaptAdam,
    DoG,
    Prodigy,
    ScheduleFreeAdamW,
    ScheduleFreeSGD,
)

SHAPES = ((4, 3), (3,))
STEPS = 25


def initial_params():
    rng = np.random.default_rng(7)
    return [rng.normal(size=s).astype("float32") for s in SHAPES]


def gradients(params, step):
    """A noisy quadratic's gradient, the same numbers for Keras and optax."""
    rng = np.random.default_rng(100 + step)
    return [(1.5 * p - 0.3 + 0.2 * rng.normal(size=p.shape)).astype("float32") for p in params]


def run_keras(optimizer, steps=STEPS):
    variables = [keras.Variable(p) for p in initial_params()]
    optimizer.build(variables)
    for step in range(steps):
        optimizer.apply(gradients([v.numpy() for v in variables], step), variables)
    return optimizer, [v.numpy() for v in variables]


def run_optax(transform, steps=STEPS, eval_params=None):
    import jax.numpy as jnp
    import optax

    params = [jnp.asarray(p) for p in initial_params()]
    state = transform.init(params)
    for step in range(steps):
        grads = [jnp.asarray(g) for g in gradients([np.asarray(p) for p in params], step)]
        updates, state = transform.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    out = [np.asarray(p) for p in params]
    if eval_params is not None:
        return out, [np.asarray(p) for p in eval_params(state, params)]
    run_optax.state = state
    return out


def assert_close(ours, theirs):
    """Within 1e-5 of each tensor's largest magnitude. Element-wise relative error is
    meaningless for entries that pass near zero; float32 rounding differs by an ulp
    between TF and XLA (e.g. in 1 - beta_2 ** t), and d-estimates amplify it."""
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        assert float(np.max(np.abs(a - b))) <= 1e-5 * float(np.max(np.abs(b)))


@pytest.fixture
def contrib():
    optax = pytest.importorskip("optax")
    return optax


def test_prodigy_matches_optax(contrib):
    # optax always applies Adam's bias correction; the authors' default is off.
    optimizer, ours = run_keras(Prodigy(weight_decay=0.01, bias_correction=True))
    theirs = run_optax(contrib.contrib.prodigy(weight_decay=0.01))
    assert_close(ours, theirs)
    d = float(optimizer._d.numpy())
    assert d > 100 * 1e-6  # the estimate moved well away from d0
    assert d == pytest.approx(float(run_optax.state.estim_lr), rel=1e-5)


def test_dadapt_adam_matches_optax(contrib):
    optimizer, ours = run_keras(DAdaptAdam(weight_decay=0.01, bias_correction=True))
    theirs = run_optax(contrib.contrib.dadapt_adamw(weight_decay=0.01))
    assert_close(ours, theirs)
    d = float(optimizer._d.numpy())
    assert d > 100 * 1e-6
    # d is a ratio of two accumulated sums: its rounding drift is larger than the
    # parameters' (which d multiplies by steps that shrink as d grows).
    assert d == pytest.approx(float(run_optax.state.estim_lr), rel=1e-4)


def test_dog_matches_optax(contrib):
    _, ours = run_keras(DoG(reps_rel=1e-4, weight_decay=0.01))
    theirs = run_optax(contrib.contrib.dog(init_step=("heuristic", 1e-4), weight_decay=0.01))
    assert_close(ours, theirs)


def test_dog_initial_eta_matches_optax(contrib):
    _, ours = run_keras(DoG(init_eta=1e-3))
    theirs = run_optax(contrib.contrib.dog(init_step=("learning_rate", 1e-3)))
    assert_close(ours, theirs)


def test_schedule_free_adamw_matches_optax_y_and_x(contrib):
    optimizer, ours = run_keras(ScheduleFreeAdamW(learning_rate=0.05, weight_decay=0.01))
    theirs, theirs_x = run_optax(
        contrib.contrib.schedule_free_adamw(learning_rate=0.05, weight_decay=0.01),
        eval_params=contrib.contrib.schedule_free_eval_params)
    assert_close(ours, theirs)
    assert_close(optimizer.eval_values(), theirs_x)


def test_schedule_free_sgd_matches_optax(contrib):
    optimizer, ours = run_keras(ScheduleFreeSGD(learning_rate=0.1, beta_1=0.8))
    theirs, theirs_x = run_optax(contrib.contrib.schedule_free_sgd(learning_rate=0.1, b1=0.8),
                                 eval_params=contrib.contrib.schedule_free_eval_params)
    assert_close(ours, theirs)
    assert_close(optimizer.eval_values(), theirs_x)


def test_schedule_free_warmup_matches_optax_with_the_authors_indexing(contrib):
    # The authors warm up with lr * (k + 1) / warmup at 0-based step k; optax's z step uses
    # k / warmup. The oracle is optax's schedule_free with its z-step schedule shifted by one.
    optax = contrib
    peak, warmup = 0.05, 8
    schedule = optax.warmup_constant_schedule(0.0, peak, warmup)

    def shifted(count):
        return schedule(count + 1)

    base = optax.chain(
        optax.scale_by_rms(decay=0.999, eps=1e-8, eps_in_sqrt=False, bias_correction=True),
        optax.add_decayed_weights(0.0),
        optax.scale_by_learning_rate(shifted),
    )
    oracle = optax.contrib.schedule_free(base, learning_rate=schedule, b1=0.9)
    optimizer, ours = run_keras(ScheduleFreeAdamW(learning_rate=peak, warmup_steps=warmup))
    assert_close(ours, run_optax(oracle))
    assert optimizer.effective_learning_rate() == pytest.approx(peak)
    early, _ = run_keras(ScheduleFreeAdamW(learning_rate=peak, warmup_steps=warmup), steps=3)
    assert early.effective_learning_rate() == pytest.approx(peak * 3 / warmup)


def test_effective_rate_is_the_step_applied():
    optimizer, _ = run_keras(ScheduleFreeSGD(learning_rate=0.2, warmup_steps=10), steps=3)
    assert optimizer.effective_learning_rate() == pytest.approx(0.2 * 3 / 10)
    prodigy, _ = run_keras(Prodigy(d0=1e-4), steps=5)
    d = float(prodigy._d.numpy())
    assert d > 1e-4  # d grew
    # The rate of step 5 is d before that step's update of d, times lr (no bias correction).
    assert 1e-4 <= prodigy.effective_learning_rate() <= d
    dog, _ = run_keras(DoG(), steps=4)
    eta = float(dog._max_distance.numpy()) / math.sqrt(float(dog._gradient_sum.numpy()) + 1e-8)
    assert dog.effective_learning_rate() == pytest.approx(eta, rel=1e-6)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_reaches_a_quadratics_minimum(name):
    """Loss mean((b - target) ** 2) on a bias alone (zero inputs), 400 compiled steps."""
    from common.optimizers import callbacks_for

    target = np.array([[1.0, -2.0, 0.5, 3.0]], "float32")
    rate = {"schedule_free_sgd": 0.5, "schedule_free_adamw": 0.2}.get(name, 1.0)
    optimizer = build_optimizer(name, rate)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(4, kernel_initializer="zeros")])
    model.compile(optimizer=optimizer, loss="mse")
    inputs, targets = np.zeros((400, 1), "float32"), np.repeat(target, 400, axis=0)
    model.fit(inputs, targets, batch_size=1, epochs=1, verbose=0, shuffle=False,
              callbacks=callbacks_for(optimizer))  # schedule-free: ends on x
    np.testing.assert_allclose(model.layers[0].bias.numpy(), target[0], atol=2e-2)


def test_names_are_selectable_everywhere():
    assert set(OPTIMIZERS) <= set(OPTIMIZER_NAMES)
    for name in OPTIMIZERS:
        assert type(build_optimizer(name, 1.0)) is OPTIMIZERS[name]
    opt = build_optimizer("prodigy", 1.0, momentum=0.8, weight_decay=0.1, epsilon=1e-6)
    assert (opt.beta_1, opt.weight_decay, opt.epsilon) == (0.8, 0.1, 1e-6)
    assert build_optimizer("dadapt_adam", 1.0).epsilon == 1e-8  # suite default: paper's eps


@pytest.mark.parametrize("cls, kwargs, field", [
    (Prodigy, {"beta_1": 1.0}, "beta_1"),
    (Prodigy, {"d0": 0.0}, "d0"),
    (Prodigy, {"growth_rate": 0.5}, "growth_rate"),
    (Prodigy, {"safeguard_warmup": 1}, "safeguard_warmup"),
    (DAdaptAdam, {"beta_2": -0.1}, "beta_2"),
    (DAdaptAdam, {"weight_decay": math.nan}, "weight_decay"),
    (DoG, {"reps_rel": 0}, "reps_rel"),
    (DoG, {"init_eta": -1.0}, "init_eta"),
    (ScheduleFreeAdamW, {"beta_1": 0.0}, "beta_1"),
    (ScheduleFreeAdamW, {"warmup_steps": 2.5}, "warmup_steps"),
    (ScheduleFreeSGD, {"weight_lr_power": -1}, "weight_lr_power"),
])
def test_bad_arguments_name_the_field(cls, kwargs, field):
    with pytest.raises(ValueError, match=f"^{field} must be") as info:
        cls(**kwargs)
    assert "\n" not in str(info.value) and "Received" in str(info.value)


# -- schedule-free's two sequences in fit --------------------------------------------
def toy_arrays(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.3).astype("float32")


def dense_model(optimizer):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def test_validation_and_evaluation_use_x_not_y():
    from common.optimizers import callbacks_for

    x, y = toy_arrays()
    xv, yv = toy_arrays(32, seed=1)
    optimizer = ScheduleFreeAdamW(learning_rate=0.05)
    model = dense_model(optimizer)
    history = model.fit(x, y, batch_size=8, epochs=3, validation_data=(xv, yv), verbose=0,
                        shuffle=False, callbacks=callbacks_for(optimizer))
    assert optimizer.holds_x()
    on_x = model.evaluate(xv, yv, verbose=0)
    x_weights = [w.numpy() for w in model.trainable_weights]
    optimizer.to_train()
    on_y = model.evaluate(xv, yv, verbose=0)
    assert not np.allclose(x_weights[0], model.trainable_weights[0].numpy())  # x != y
    assert history.history["val_loss"][-1] == pytest.approx(on_x, rel=1e-6)
    assert abs(on_x - on_y) > 1e-4 * on_x  # the test could tell them apart
    optimizer.to_eval()
    np.testing.assert_allclose(model.trainable_weights[0].numpy(), x_weights[0], rtol=1e-6)


def test_save_and_load_round_trip_config_and_state(tmp_path):
    x, y = toy_arrays()
    for name in sorted(OPTIMIZERS):
        optimizer = build_optimizer(name, 0.05 if "schedule_free" in name else 1.0)
        model = dense_model(optimizer)
        start = [w.numpy() for w in model.trainable_weights]
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        for initial, kept in zip(start, getattr(optimizer, "_x0", []), strict=False):
            # built while Keras traced the first step: the copy was made once, not per step
            np.testing.assert_array_equal(kept.numpy(), initial)
        path = tmp_path / f"{name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert type(loaded.optimizer) is type(optimizer)
        assert loaded.optimizer.get_config() == optimizer.get_config()
        assert len(loaded.optimizer.variables) == len(optimizer.variables)
        for a, b in zip(loaded.optimizer.variables, optimizer.variables, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert loaded.optimizer.effective_learning_rate() == optimizer.effective_learning_rate()
        # And the next step is the same step.
        model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)
        loaded.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)
        np.testing.assert_array_equal(loaded.trainable_weights[0].numpy(),
                                      model.trainable_weights[0].numpy())


# -- the one training path -------------------------------------------------------------
def read_rates(run_dir):
    with (run_dir / "steps.csv").open(newline="") as stream:
        return [float(row["learning_rate"]) for row in csv.DictReader(stream)]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_run_training_logs_the_effective_rate(name, tmp_path):
    from common.training import run_training
    from tests.toy_domain import TOY, ToyConfig

    rate = 0.05 if "schedule_free" in name else 1.0
    cfg = ToyConfig(optimizer=name, learning_rate=rate, epochs=2, steps_per_epoch=6,
                    output=str(tmp_path), verbose=0, monitor_every=0, log_lr_every=1)
    result = run_training(TOY, cfg)
    assert result.summary["status"] == "completed"
    rates = read_rates(result.run_dir)
    assert len(rates) == 12
    assert rates[-1] == pytest.approx(result.model.optimizer.effective_learning_rate(), rel=1e-6)
    if "schedule_free" in name:
        assert rates == pytest.approx([rate] * 12)
        assert result.model.optimizer.holds_x()  # test metrics and model.keras are on x
    else:
        assert len(set(rates)) > 1 and max(rates) < rate  # d * lr, DoG's eta: not lr itself
    loaded = keras.saving.load_model(result.run_dir / "model.keras")
    np.testing.assert_array_equal(loaded.trainable_weights[0].numpy(),
                                  result.model.trainable_weights[0].numpy())


class StopAt(keras.callbacks.Callback):
    """Ctrl-C in the middle of an epoch (run_training ends the run as interrupted)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt


def assert_cut_and_resumed_equals_straight(values, tmp_path):
    """A toy run cut by Ctrl-C in epoch 2 and resumed ends where an uninterrupted one
    does: same validation history, test loss and optimizer state. Returns both runs."""
    from common.training import run_training
    from tests.toy_domain import TOY, ToyConfig

    base = dict(epochs=3, steps_per_epoch=5, output=str(tmp_path), verbose=0,
                monitor_every=0, deterministic=True, **values)
    first = run_training(TOY, ToyConfig(run_name="cut", **base), extra_callbacks=[StopAt(1, 2)])
    assert first.summary["status"] == "interrupted"
    resumed = run_training(TOY, ToyConfig(run_name="cut", resume=True, **base))
    straight = run_training(TOY, ToyConfig(run_name="straight", **base))
    a, b = resumed.summary, straight.summary
    assert a["status"] == "completed" and a["epochs_run"] == 3
    assert a["history"]["val_loss"] == b["history"]["val_loss"]
    assert a["test_loss"] == b["test_loss"]
    for u, v in zip(resumed.model.optimizer.variables, straight.model.optimizer.variables,
                    strict=True):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
    return resumed, straight


@pytest.mark.parametrize("name", ["schedule_free_adamw", "prodigy"])
def test_resume_is_exact(name, tmp_path):
    rate = 0.05 if "schedule_free" in name else 1.0
    resumed, straight = assert_cut_and_resumed_equals_straight(
        dict(optimizer=name, learning_rate=rate), tmp_path)
    assert read_rates(resumed.run_dir) == read_rates(straight.run_dir)


# -- one-cycle momentum: the traced step must apply it ------------------------------------
def linear_fit(optimizer, callbacks, steps=12):
    x, y = toy_arrays(8)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False,
                                                                    kernel_initializer="zeros")])
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=8, epochs=steps, verbose=0, shuffle=False, callbacks=callbacks)
    return model, x, y


def replay(x, y, rule, steps=12):
    """The same training in float64 numpy: `rule(step, w, g, state) -> w`."""
    w, state = np.zeros((3, 1)), {}
    for step in range(steps):
        g = 2.0 / len(x) * x.T @ (x @ w - y)
        w = rule(step, w, g, state)
    return w


def test_one_cycle_cycles_sgd_momentum_in_the_applied_update(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from common.optimizers import MomentumCycle, callbacks_for
    from common.schedules import OneCycle

    schedule = OneCycle(0.05, 12, pct_start=0.25)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9)
    extra = callbacks_for(optimizer, log_dir=tmp_path, log_every=1)
    assert [type(c) for c in extra] == [MomentumCycle]
    model, x, y = linear_fit(optimizer, extra)

    def sgd(step, w, g, state, cycled=True):
        mom = schedule.momentum(step) if cycled else 0.9
        state["m"] = mom * state.get("m", 0.0) - rate_at_step(schedule, step) * g
        return w + state["m"]

    got = model.trainable_weights[0].numpy()
    np.testing.assert_allclose(got, replay(x, y, sgd), rtol=1e-4)
    fixed = replay(x, y, lambda *a: sgd(*a, cycled=False))
    assert np.max(np.abs(got - fixed)) > 1e-3 * np.max(np.abs(fixed))  # a visible change
    assert extra[0].momentums == pytest.approx([schedule.momentum(s) for s in range(12)])
    assert optimizer.get_config()["momentum"] == 0.9  # a float again: model.save works
    model.save(tmp_path / "m.keras")
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()
    import tensorflow as tf

    logged = [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("batch_momentum")]
    assert logged == pytest.approx(extra[0].momentums, rel=1e-6)


def rate_at_step(schedule, step):
    from common.schedules import rate_at

    return rate_at(schedule, step)


def test_one_cycle_cycles_adam_beta_1_and_can_be_turned_off():
    from common.optimizers import callbacks_for
    from common.schedules import OneCycle

    schedule = OneCycle(0.05, 12, pct_start=0.25)
    optimizer = keras.optimizers.Adam(schedule, beta_1=0.9)
    model, x, y = linear_fit(optimizer, callbacks_for(optimizer))

    def adam(step, w, g, state):
        b1, b2, t = schedule.momentum(step), 0.999, step + 1
        state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        alpha = rate_at_step(schedule, step) * math.sqrt(1 - b2**t) / (1 - b1**t)
        return w - alpha * state["m"] / (np.sqrt(state["v"]) + 1e-7)

    np.testing.assert_allclose(model.trainable_weights[0].numpy(), replay(x, y, adam),
                               rtol=1e-4)
    off = OneCycle(0.05, 12, pct_start=0.25, cycle_momentum=False)
    assert callbacks_for(keras.optimizers.Adam(off)) == []
    assert callbacks_for(keras.optimizers.SGD(schedule)) == []  # no momentum to cycle


def test_sparse_embedding_gradients_are_applied():
    """Embedding gradients arrive as IndexedSlices on TensorFlow; every method takes them."""
    tokens = np.array([[1, 2, 3], [2, 3, 4]] * 4, "int32")
    labels = np.array([[0.0], [1.0]] * 4, "float32")
    for name in sorted(OPTIMIZERS):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,), dtype="int32"), keras.layers.Embedding(10, 4),
                                  keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])
        model.compile(optimizer=build_optimizer(name, 0.05 if "free" in name else 1.0),
                      loss="mse")
        table = model.layers[0].embeddings.numpy()
        history = model.fit(tokens, labels, batch_size=4, epochs=3, verbose=0)
        assert all(math.isfinite(v) for v in history.history["loss"]), name
        moved = np.abs(model.layers[0].embeddings.numpy() - table).max(axis=1)
        # used rows move; unused ones do not (schedule-free: up to the rounding of x <-> y)
        assert moved[2] > 0 and moved[7] <= 1e-3 * moved[2], name
