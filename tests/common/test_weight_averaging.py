"""Weight averaging (--weight-averaging): the average against a numpy replay, validation
and saving on the average, exact resume, and the config's refusals."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from common.optimizers import callbacks_for
from common.optimizers.averaging import WARMUP_OFFSET, enable_weight_averaging


def toy_arrays(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


class RawRecorder(keras.callbacks.Callback):
    """The model's weights after every step (inside an epoch: the raw ones)."""

    def __init__(self):
        super().__init__()
        self.kernels = []

    def on_train_batch_end(self, batch, logs=None):
        self.kernels.append(self.model.trainable_weights[0].numpy().copy())


def linear_model(optimizer):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def expected_average(kernels, momentum):
    average = kernels[0]
    for step, kernel in enumerate(kernels[1:], start=1):
        m = min(momentum, (1 + step) / (WARMUP_OFFSET + step))
        average = m * average + (1 - m) * kernel
    return average


def test_validation_and_the_final_model_hold_the_average_of_the_raw_steps():
    x, y = toy_arrays()
    xv, yv = toy_arrays(32, seed=1)
    optimizer = keras.optimizers.SGD(learning_rate=0.05)
    enable_weight_averaging(optimizer, 0.8)
    model = linear_model(optimizer)
    recorder = RawRecorder()
    history = model.fit(x, y, batch_size=8, epochs=3, validation_data=(xv, yv), verbose=0,
                        shuffle=False, callbacks=[*callbacks_for(optimizer), recorder])
    assert len(recorder.kernels) == 18
    average = expected_average(recorder.kernels, 0.8)
    np.testing.assert_allclose(model.trainable_weights[0].numpy(), average, rtol=1e-5)
    # The raw weights are not lost: they sit in the average's slot, ready to resume.
    np.testing.assert_allclose(optimizer._model_variables_moving_average[0].numpy(),
                               recorder.kernels[-1], rtol=1e-6)
    assert not np.allclose(average, recorder.kernels[-1], rtol=1e-3)  # they differ
    assert history.history["val_loss"][-1] == pytest.approx(
        model.evaluate(xv, yv, verbose=0), rel=1e-6)
    # Evaluating after fit does not swap anything back.
    np.testing.assert_allclose(model.trainable_weights[0].numpy(), average, rtol=1e-5)


def test_training_steps_see_the_raw_weights_in_every_epoch():
    x, y = toy_arrays()
    optimizer = keras.optimizers.SGD(learning_rate=0.05)
    enable_weight_averaging(optimizer, 0.9)
    averaged = linear_model(optimizer)
    plain = linear_model(keras.optimizers.SGD(learning_rate=0.05))
    for model in (averaged, plain):
        model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False,
                  validation_data=toy_arrays(16, seed=2),
                  callbacks=callbacks_for(model.optimizer))
    # Averaging changes what is evaluated, never the path the optimizer takes.
    np.testing.assert_allclose(optimizer._model_variables_moving_average[0].numpy(),
                               plain.trainable_weights[0].numpy(), rtol=1e-6)


def test_enabling_after_the_optimizer_is_built_is_refused():
    optimizer = keras.optimizers.SGD(learning_rate=0.05)
    linear_model(optimizer).fit(*toy_arrays(8), verbose=0)
    with pytest.raises(RuntimeError, match="before the optimizer is built"):
        enable_weight_averaging(optimizer, 0.9)


@pytest.mark.parametrize(("values", "field"), [
    ({"weight_averaging": 1.0}, "weight_averaging must be in"),
    ({"weight_averaging": -0.1}, "weight_averaging must be in"),
    ({"weight_averaging": 0.99, "optimizer": "schedule_free_adamw"}, "already evaluates"),
])
def test_bad_values_name_the_field(values, field):
    from tests.toy_domain import ToyConfig

    with pytest.raises(ValueError, match=field):
        ToyConfig(**values)


def test_a_domain_default_average_yields_to_a_schedule_free_optimizer():
    from domains.translation.config import TranslationConfig

    assert TranslationConfig().weight_averaging > 0  # translation averages by default
    assert TranslationConfig(optimizer="schedule_free_adamw").weight_averaging == 0.0
    assert TranslationConfig(optimizer="adamw").weight_averaging > 0
    # A momentum other than the default is the user's choice: refused, as above.
    with pytest.raises(ValueError, match="already evaluates"):
        TranslationConfig(optimizer="schedule_free_sgd", weight_averaging=0.9)


def test_run_training_tests_and_saves_the_average_and_resumes_exactly(tmp_path):
    from common.training import run_training
    from tests.common.test_ratefree import assert_cut_and_resumed_equals_straight
    from tests.toy_domain import TOY, ToyConfig

    resumed, straight = assert_cut_and_resumed_equals_straight(
        dict(weight_averaging=0.9), tmp_path)
    base = dict(weight_averaging=0.9, epochs=3, steps_per_epoch=5, output=str(tmp_path),
                verbose=0, monitor_every=0, deterministic=True)
    plain = run_training(TOY, ToyConfig(run_name="plain", **{**base, "weight_averaging": 0.0}))
    a = resumed.summary
    # Same raw trajectory as a plain run, but a different model is tested and saved.
    assert a["history"]["loss"] == pytest.approx(plain.summary["history"]["loss"], rel=1e-6)
    assert a["test_loss"] != pytest.approx(plain.summary["test_loss"], rel=1e-4)
    loaded = keras.saving.load_model(straight.run_dir / "model.keras")
    np.testing.assert_array_equal(loaded.trainable_weights[0].numpy(),
                                  straight.model.trainable_weights[0].numpy())
    test = TOY.load_data(ToyConfig(**base)).test
    assert straight.summary["test_loss"] == pytest.approx(
        loaded.evaluate(test, verbose=0, return_dict=True)["loss"], rel=1e-5)
