"""Test-time flip averaging: what the wrapper computes, and which configs turn it on."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.test_time import flip_averaged_model, flip_averaged_scores
from tests.jax_subprocess import run_on_jax


def _images(n=3, height=5, width=6, channels=2):
    return np.random.default_rng(0).normal(size=(n, height, width, channels)).astype("float32")


def _classifier():
    """Per-image logits that depend on where things are: a flip changes them."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((5, 6, 2))
    outputs = keras.layers.Dense(4)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


def _segmenter():
    """A per-pixel map from an asymmetric 3x3 kernel: not flip-equivariant."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((None, None, 2))
    outputs = keras.layers.Conv2D(1, 3, padding="same")(inputs)
    return keras.Model(inputs, outputs)


def test_classifier_logits_are_the_mean_over_the_image_and_its_mirror():
    model, images = _classifier(), _images()
    plain = model.predict(images, verbose=0)
    mirrored = model.predict(images[:, :, ::-1], verbose=0)
    assert not np.allclose(plain, mirrored)  # else the test could not fail
    averaged = flip_averaged_model(model, ((2,),)).predict(images, verbose=0)
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)


def test_segmentation_maps_are_flipped_back_before_averaging():
    model, images = _segmenter(), _images(height=7, width=9)
    flips = ((2,), (1,), (1, 2))
    views = [model.predict(images, verbose=0)]
    for axes in flips:
        flipped = np.flip(images, axis=axes)
        views.append(np.flip(model.predict(flipped, verbose=0), axis=axes))
    assert not np.allclose(views[0], views[1])
    averaged = flip_averaged_model(model, flips).predict(images, verbose=0)
    np.testing.assert_allclose(averaged, np.mean(views, axis=0), rtol=1e-5, atol=1e-5)


def test_a_flip_equivariant_map_is_unchanged():
    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x[..., :1] * 3.0)(inputs))
    images = _images()
    averaged = flip_averaged_model(model, ((2,), (1,))).predict(images, verbose=0)
    np.testing.assert_allclose(averaged, images[..., :1] * 3.0, rtol=1e-6)


def test_scores_name_split_and_metric_and_skip_missing_splits():
    model, images = _classifier(), _images(n=8)
    labels = np.arange(8) % 4
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # Compiled, as a trained model is: its own metrics must not stand in for the wrapper's.
    model.compile(loss=loss, metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    model.evaluate(dataset, verbose=0)
    scores = flip_averaged_scores(
        model, ((2,),), loss, [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        {"val": dataset, "test": None},
    )
    assert set(scores) == {"val_flip_loss", "val_flip_accuracy"}
    logits = flip_averaged_model(model, ((2,),)).predict(images, verbose=0)
    assert scores["val_flip_accuracy"] == pytest.approx(np.mean(logits.argmax(1) == labels))
    expected_loss = float(np.mean(loss(labels, logits)))
    assert scores["val_flip_loss"] == pytest.approx(expected_loss, rel=1e-5)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, ((2,),)),
        ({"test_time_flip": False}, ()),
        ({"horizontal_flip": False}, ()),  # digits, text: a mirror is another class
        ({"augment": False}, ()),
    ],
)
def test_image_classification_flips_only_what_training_flipped(overrides, expected):
    from domains.image_classification import DOMAIN

    cfg = DOMAIN.config_cls.smoke(**overrides)
    assert DOMAIN.test_time_flips(cfg) == expected


def test_segmentation_flips_both_ways_unless_turned_off():
    from domains.medical_segmentation import DOMAIN

    assert DOMAIN.test_time_flips(DOMAIN.config_cls.smoke()) == ((2,), (1,), (1, 2))
    assert DOMAIN.test_time_flips(DOMAIN.config_cls.smoke(test_time_flip=False)) == ()


JAX_SCRIPT = """
import keras, numpy as np, tensorflow as tf
from common.test_time import flip_averaged_model, flip_averaged_scores
assert keras.backend.backend() == "jax"
keras.utils.set_random_seed(1)
inputs = keras.Input((5, 6, 2))
model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))
images = np.random.default_rng(0).normal(size=(8, 5, 6, 2)).astype("float32")
labels = np.arange(8) % 4
dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
scores = flip_averaged_scores(model, ((2,),), loss,
    [keras.metrics.SparseCategoricalAccuracy(name="accuracy")], {"val": dataset})
logits = (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)) / 2
print(scores["val_flip_accuracy"], float(np.mean(logits.argmax(1) == labels)))
"""


def test_flip_scores_run_on_the_jax_backend(tmp_path):
    scored, expected = map(float, run_on_jax(JAX_SCRIPT, tmp_path)[-2:])
    assert scored == pytest.approx(expected)
