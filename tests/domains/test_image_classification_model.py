"""Image classification: augmentation, the models, the loss and the end-of-run report."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.domain import DataBundle
from common.errors import UserError
from domains.image_classification import DOMAIN, SparseLabelSmoothingLoss, metrics
from domains.image_classification import model as model_module
from domains.image_classification.augment import augment_dataset, cut_out
from domains.image_classification.config import ImageClassificationConfig
from domains.image_classification.model import GradientScale, build_model, build_resnet
from domains.image_classification.report import (
    confusion_matrix,
    evaluate_extra,
    top_k_accuracy,
)


def labelled_textures(count=64, side=12, classes=4, seed=0):
    """Channel 0 holds the label everywhere; channels 1-2 are random texture."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count)
    images = rng.integers(0, 256, (count, side, side, 3)).astype(np.uint8)
    images[..., 0] = (labels * 50)[:, None, None]
    return images, labels


def bundle_of(images, labels, class_names, batch_size=8):
    pairs = tf.data.Dataset.from_tensor_slices((images.astype(np.float32), labels.astype(np.int64)))
    return DataBundle(
        train=pairs.batch(batch_size, drop_remainder=True).repeat(),
        val=pairs.batch(batch_size),
        test=pairs.batch(batch_size),
        train_examples=len(labels),
        description="textures",
        info={
            "class_names": class_names,
            "num_classes": len(class_names),
            "image_shape": images.shape[1:],
        },
    )


# ## Augmentation


def test_augmentation_keeps_shapes_and_label_alignment():
    images, labels = labelled_textures()
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    augmented = list(augment_dataset(dataset, seed=1, padding=4))
    out_images = np.stack([x.numpy() for x, _ in augmented])
    out_labels = np.array([y.numpy() for _, y in augmented])
    assert out_images.shape == images.shape and out_images.dtype == np.uint8
    np.testing.assert_array_equal(out_labels, labels)
    # Crops and flips move texture around but never mix images: channel 0 is the label.
    np.testing.assert_array_equal(out_images[..., 0], images[..., 0])
    assert not np.array_equal(out_images[..., 1:], images[..., 1:])


def test_augmentation_is_seeded_and_differs_between_epochs():
    images, labels = labelled_textures(count=16)

    def two_epochs(seed):
        pairs = tf.data.Dataset.from_tensor_slices((images, labels))
        return np.stack([x.numpy() for x, _ in augment_dataset(pairs, seed=seed).repeat(2)])

    first = two_epochs(5)
    np.testing.assert_array_equal(first, two_epochs(5))
    assert not np.array_equal(first, two_epochs(6))
    assert not np.array_equal(first[:16], first[16:])


def test_cutout_greys_one_square_of_the_given_side_and_keeps_the_rest():
    side, size = 16, 6
    image = tf.zeros((side, side, 3), tf.uint8)  # black, so the grey square stands out
    squares = []
    for first in range(40):
        out = cut_out(image, tf.constant([first, 3], tf.int64), size=size).numpy()
        grey = np.all(out == 128, axis=-1)
        assert np.all((out == 128) | (out == 0)) and np.all(grey == (out[..., 0] == 128))
        rows, cols = np.nonzero(grey.any(axis=1))[0], np.nonzero(grey.any(axis=0))[0]
        # One axis-aligned rectangle, at most size x size (less where it leaves the image).
        assert grey.sum() == len(rows) * len(cols) and 1 <= len(rows) <= size >= len(cols)
        squares.append((rows[0], cols[0], len(rows), len(cols)))
    assert len(set(squares)) > 10  # the place is random
    assert any(r * c == size * size for _, _, r, c in squares)  # whole squares occur
    assert any(r * c < size * size for _, _, r, c in squares)  # and clipped ones


def test_cutout_is_off_by_default_and_keeps_the_old_crops_and_flips():
    images, labels = labelled_textures(count=8)

    def augmented(**kwargs):
        pairs = tf.data.Dataset.from_tensor_slices((images, labels))
        return np.stack([x.numpy() for x, _ in augment_dataset(pairs, seed=3, **kwargs)])

    plain = augmented()
    np.testing.assert_array_equal(plain, augmented(cutout=0))
    with_cutout = augmented(cutout=4)
    differs = np.any(with_cutout != plain, axis=(1, 2, 3))
    assert differs.all()
    # Channel 0 carries the label everywhere, so outside the grey square it is unchanged.
    assert np.all((with_cutout[..., 0] == images[..., 0]) | (with_cutout[..., 0] == 128))


def test_training_pipeline_keeps_labels_with_augmented_images(tmp_path):
    images, labels = labelled_textures(count=40, side=8)
    path = tmp_path / "textures.npz"
    np.savez(path, x_train=images, y_train=labels, x_test=images[:8], y_test=labels[:8])
    cfg = ImageClassificationConfig.smoke(data=str(path), batch_size=8)
    for batch_images, batch_labels in DOMAIN.load_data(cfg).train.take(6):
        np.testing.assert_array_equal(
            batch_images.numpy()[..., 0].reshape(8, -1).max(axis=1),
            batch_labels.numpy() * 50,
        )


# ## Models


def test_default_resnet_size_and_output():
    cfg = ImageClassificationConfig()
    model = build_resnet(
        (32, 32, 3), 10, base_filters=cfg.base_filters, blocks_per_stage=cfg.blocks_per_stage
    )
    assert 300_000 <= model.count_params() <= 600_000
    assert model(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 10)


def test_resnet_handles_tiny_grey_images():
    model = build_resnet((5, 5, 1), 3, base_filters=2, blocks_per_stage=2)
    assert model(np.zeros((1, 5, 5, 1), np.float32)).shape == (1, 3)


def test_tiny_fit_loss_falls():
    images, labels = labelled_textures(count=64, side=12)
    cfg = ImageClassificationConfig.smoke()
    bundle = bundle_of(images, labels, ["a", "b", "c", "d"])
    model = DOMAIN.build_model(cfg, bundle)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=DOMAIN.loss(cfg), metrics=DOMAIN.metrics(cfg)
    )
    history = model.fit(bundle.train, steps_per_epoch=8, epochs=4, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert history["accuracy"][-1] > 0.5


def test_gradient_scale_is_identity_forward_and_scales_backward():
    layer = GradientScale(0.1)
    x = tf.constant([[1.0, -2.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        total = tf.reduce_sum(3.0 * y)
    np.testing.assert_allclose(y.numpy(), x.numpy())
    np.testing.assert_allclose(tape.gradient(total, x).numpy(), [[0.3, 0.3]], rtol=1e-6)
    restored = GradientScale.from_config(layer.get_config())
    assert restored.scale == 0.1


def test_pretrained_head_on_a_backbone(monkeypatch):
    # No weights download in tests: the backbone is built with random weights.
    def backbone_without_download(**kwargs):
        return keras.applications.MobileNetV2(**{**kwargs, "weights": None, "alpha": 0.35})

    monkeypatch.setitem(model_module.BACKBONES, "mobilenet_v2", (backbone_without_download, True))
    cfg = ImageClassificationConfig.smoke(pretrained=True, backbone_lr_scale=0.0)
    images, labels = labelled_textures(count=8, side=12)
    model = build_model(cfg, bundle_of(images, labels, ["a", "b", "c", "d"]))
    assert model(images[:2].astype(np.float32)).shape == (2, 4)
    backbone = model.get_layer("mobilenetv2_0.35_32")
    assert not backbone.trainable  # backbone_lr_scale=0 freezes it


def test_pretrained_offline_is_one_clear_error(monkeypatch):
    def failing_download(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...")

    monkeypatch.setenv("LRSUITE_NETWORK_PROBE_HOST", "nonexistent.invalid")
    monkeypatch.setitem(model_module.BACKBONES, "mobilenet_v2", (failing_download, True))
    cfg = ImageClassificationConfig.smoke(pretrained=True)
    images, labels = labelled_textures(count=8, side=12)
    with pytest.raises(UserError, match="could not download the ImageNet weights.*no network"):
        build_model(cfg, bundle_of(images, labels, ["a", "b", "c", "d"]))


def test_label_smoothing_loss_matches_keras_categorical():
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], np.float32)
    labels = np.array([0, 2])
    expected = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
        np.eye(3, dtype=np.float32)[labels], logits
    )
    got = SparseLabelSmoothingLoss(0.1)(labels, logits)
    np.testing.assert_allclose(float(got), float(expected), rtol=1e-6)


def test_top5_metric_only_above_ten_classes():
    images, labels = labelled_textures(count=8)
    few = bundle_of(images, labels, [str(i) for i in range(10)])
    many = bundle_of(images, labels, [str(i) for i in range(11)])
    cfg = ImageClassificationConfig.smoke()
    assert [m.name for m in metrics(cfg, few)] == ["accuracy"]
    assert [m.name for m in metrics(cfg, many)] == ["accuracy", "top5_accuracy"]


# ## Report


def test_confusion_matrix_and_top_k():
    counts = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 0]])
    logits = np.array([[0.1, 0.9, 0.5], [0.8, 0.1, 0.3]])
    assert top_k_accuracy(np.array([2, 1]), logits, 2) == 0.5


def test_evaluate_extra_writes_plots_and_tensorboard_images(tmp_path):
    images, labels = labelled_textures(count=24, classes=12)
    class_names = [f"c{i}" for i in range(12)]
    bundle = bundle_of(images, labels, class_names)
    model = build_resnet((12, 12, 3), 12, base_filters=2, blocks_per_stage=0)
    extra = evaluate_extra(model, bundle, ImageClassificationConfig.smoke(), tmp_path)
    logits = np.asarray(model.predict(images.astype(np.float32), verbose=0))
    assert extra["test_top5_accuracy"] == pytest.approx(top_k_accuracy(labels, logits, 5))
    assert extra["test_misclassified"] == int((logits.argmax(1) != labels).sum())
    for name in ("confusion_matrix", "misclassified"):
        png = (tmp_path / "plots" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG")
    tags = set()
    for event_file in (tmp_path / "test").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(value.tag for value in event.summary.value)
    assert {"confusion_matrix", "misclassified"} <= tags


def test_search_space_overrides_are_valid_configs():
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    cfg = ImageClassificationConfig.smoke(schedule="one_cycle")
    overrides = DOMAIN.search_space(hp, cfg)
    tuned = cfg.replace(**overrides)
    assert tuned.optimizer in ("nesterov", "adamw")
    assert {"optimizer", "schedule", "base_filters"} <= set(hp.values)
