"""Tests of the medical segmentation domain: config, folder reader, losses, metrics,
joint augmentation, pipelines, model, overlays, and an end-to-end run through the CLI."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from common.errors import UserError
from domains.medical_segmentation import DOMAIN
from domains.medical_segmentation.augment import augment_pair, training_example
from domains.medical_segmentation.config import SegmentationConfig
from domains.medical_segmentation.data import (
    carve_validation,
    load_data,
    pad_to_multiple,
    read_folder,
    read_split,
)
from domains.medical_segmentation.losses import (
    DiceBCELoss,
    DiceCoefficient,
    MaskedBinaryIoU,
)
from domains.medical_segmentation.model import build_unet
from domains.medical_segmentation.report import evaluate_extra, image_dice
from tests.domains.test_medical_segmentation_fixtures import make_folder, write_png

# ---------------------------------------------------------------- config


def test_smoke_config_is_valid_and_small():
    cfg = SegmentationConfig.smoke()
    assert cfg.domain == "medical_segmentation"
    assert cfg.base_filters <= 8 and cfg.crop_size % 2**cfg.depth == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"crop_size": 100}, "Received: crop_size=100"),
        ({"depth": 0}, "Received: depth=0"),
        ({"base_filters": 0}, "Received: base_filters=0"),
        ({"val_fraction": 1.0}, "Received: val_fraction=1.0"),
        ({"image_size": 8, "depth": 4}, "Received: image_size=8"),
        ({"max_shift": -1}, "Received: max_shift=-1"),
        ({"dropout": 1.0}, "Received: dropout=1.0"),
    ],
)
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        SegmentationConfig(**overrides)


# ---------------------------------------------------------------- folder reader


def test_read_folder_pairs_images_masks_and_fov(tmp_path):
    splits = read_folder(make_folder(tmp_path, {"train": 3, "val": 1, "test": 2}))
    assert [len(splits[k]) for k in ("train", "val", "test")] == [3, 1, 2]
    sample = splits["train"][0]
    assert sample.image.shape == (40, 36, 3) and sample.image.dtype == np.uint8
    assert set(np.unique(sample.mask)) <= {0, 1} and sample.mask.any()
    assert not sample.fov.all() and sample.fov.any()  # a disk, not everything


def test_fov_is_optional_and_then_everything_counts(tmp_path):
    splits = read_folder(make_folder(tmp_path, {"train": 2}, with_fov=False))
    assert splits["val"] is None and splits["test"] is None
    assert all(s.fov.all() for s in splits["train"])


def _one_split(tmp_path):
    return make_folder(tmp_path / "data", {"train": 3})


def _bad_mask_size(root):
    path = root / "train" / "masks" / "01.png"
    write_png(path, np.zeros((20, 20), np.uint8))
    return path


def _grey_mask(root):
    path = root / "train" / "masks" / "00.png"
    values = np.array([[0, 128], [255, 0]], np.uint8)
    write_png(path, np.tile(values, (20, 18)))
    return path


def _image_without_mask(root):
    (root / "train" / "masks" / "02.png").unlink()
    return root / "train" / "images" / "02.png"


def _mask_without_image(root):
    (root / "train" / "images" / "02.png").unlink()
    (root / "train" / "fov" / "02.png").unlink()
    return root / "train" / "masks" / "02.png"


def _unreadable_image(root):
    path = root / "train" / "images" / "01.png"
    path.write_bytes(b"not a png at all")
    return path


def _truncated_mask(root):
    path = root / "train" / "masks" / "01.png"
    path.write_bytes(path.read_bytes()[:60])
    return path


def _bad_fov_size(root):
    path = root / "train" / "fov" / "00.png"
    write_png(path, np.full((40, 30), 255, np.uint8))
    return path


def _missing_masks_folder(root):
    for path in (root / "train" / "masks").iterdir():
        path.unlink()
    (root / "train" / "masks").rmdir()
    return root / "train" / "masks"


@pytest.mark.parametrize(
    "damage",
    [
        _bad_mask_size,
        _grey_mask,
        _image_without_mask,
        _mask_without_image,
        _unreadable_image,
        _truncated_mask,
        _bad_fov_size,
        _missing_masks_folder,
    ],
)
def test_bad_input_raises_user_error_naming_the_file(tmp_path, damage):
    root = _one_split(tmp_path)
    culprit = damage(root)
    with pytest.raises(UserError) as caught:
        load_data(SegmentationConfig.smoke(data=str(root)))
    assert str(culprit) in str(caught.value)


def test_missing_data_folder_and_missing_train_split_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_data(SegmentationConfig.smoke(data=str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=str(tmp_path / "empty" / "train")):
        load_data(SegmentationConfig.smoke(data=str(tmp_path / "empty")))


def test_cli_prints_one_line_naming_the_file_and_exits_2(tmp_path, capsys):
    from common.cli import main

    root = _one_split(tmp_path)
    culprit = _grey_mask(root)
    code = main(
        [
            "train",
            "medical_segmentation",
            "--smoke",
            "--data",
            str(root),
            "--output",
            str(tmp_path / "runs"),
        ]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert len(error.splitlines()) == 1 and str(culprit) in error


def test_validation_is_carved_reproducibly_from_train(tmp_path):
    splits = read_folder(make_folder(tmp_path, {"train": 10}))
    kept_a, held_a = carve_validation(splits["train"], 0.2, seed=3)
    kept_b, held_b = carve_validation(splits["train"], 0.2, seed=3)
    _, held_c = carve_validation(splits["train"], 0.2, seed=4)
    assert [s.name for s in held_a] == [s.name for s in held_b]
    assert len(held_a) == 2 and len(kept_a) == 8
    assert {s.name for s in held_a}.isdisjoint(s.name for s in kept_a)
    assert {s.name for s in held_a} != {s.name for s in held_c}  # the seed matters


# ---------------------------------------------------------------- losses and metrics

# One 2x2 image: mask, field of view, prediction. The bottom-right pixel lies
# outside the FOV (a confident false alarm there must not count).
MASK = np.array([[1.0, 0.0], [1.0, 0.0]])
FOV = np.array([[1.0, 1.0], [1.0, 0.0]])
PRED = np.array([[0.8, 0.2], [0.4, 0.9]])


def _target():
    return np.stack([MASK, FOV], axis=-1)[None].astype("float32")


def _pred():
    return PRED[None, ..., None].astype("float32")


def test_dice_bce_loss_matches_hand_computation():
    # FOV pixels: (m=1, p=.8), (m=0, p=.2), (m=1, p=.4).
    bce = -(math.log(0.8) + math.log(0.8) + math.log(0.4)) / 3
    dice = (2 * (0.8 + 0.4) + 1) / ((0.8 + 0.2 + 0.4) + 2 + 1)
    loss = float(DiceBCELoss()(_target(), _pred()))
    assert loss == pytest.approx(bce + 1 - dice, rel=1e-5)


def test_loss_ignores_pixels_outside_the_fov():
    other = _pred().copy()
    other[0, 1, 1, 0] = 0.01  # change only the pixel outside the FOV
    assert float(DiceBCELoss()(_target(), _pred())) == pytest.approx(
        float(DiceBCELoss()(_target(), other)), rel=1e-6
    )


def test_one_channel_target_counts_every_pixel():
    all_pixels = np.stack([MASK, np.ones_like(FOV)], -1)[None].astype("float32")
    assert float(DiceBCELoss()(MASK[None, ..., None], _pred())) == pytest.approx(
        float(DiceBCELoss()(all_pixels, _pred())), rel=1e-6
    )


def test_dice_and_iou_metrics_match_hand_computation():
    # Thresholded inside the FOV: prediction (1, 0, 1->0.4 is 0) -> TP=1, FP=0, FN=1.
    dice, iou = DiceCoefficient(), MaskedBinaryIoU()
    for metric in (dice, iou):
        metric.update_state(_target(), _pred())
    assert float(dice.result()) == pytest.approx(2 / 3)
    assert float(iou.result()) == pytest.approx(1 / 2)


def test_dice_metric_pools_over_batches_and_resets():
    dice = DiceCoefficient()
    dice.update_state(_target(), _pred())  # TP 1, predicted 1, true 2
    perfect = _target()[..., :1]
    dice.update_state(_target(), perfect)  # TP 2, predicted 2, true 2
    assert float(dice.result()) == pytest.approx(2 * 3 / (3 + 4))
    dice.reset_state()
    empty = np.zeros((1, 2, 2, 2), "float32")
    dice.update_state(empty, np.zeros((1, 2, 2, 1), "float32"))
    assert float(dice.result()) == 1.0  # nothing to find, nothing predicted


def test_loss_and_metrics_survive_serialization():
    for obj in (DiceBCELoss(dice_weight=0.5), DiceCoefficient(), MaskedBinaryIoU()):
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
        assert type(again) is type(obj) and again.name == obj.name
    assert (
        keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(DiceBCELoss(dice_weight=0.5))
        ).dice_weight
        == 0.5
    )


def test_image_dice_in_report_matches_metric():
    predicted = PRED > 0.5
    assert image_dice(MASK > 0, FOV > 0, predicted) == pytest.approx(2 / 3)


# ---------------------------------------------------------------- joint augmentation


def _encoded_pair(seed=0, height=24, width=24):
    """An image whose channels 0 and 1 copy the mask and FOV, channel 2 a unique ramp."""
    rng = np.random.default_rng(seed)
    mask = (rng.random((height, width)) < 0.3).astype("float32")
    fov = (rng.random((height, width)) < 0.8).astype("float32")
    ramp = np.arange(height * width, dtype="float32").reshape(height, width) / (height * width)
    image = np.stack([mask, fov, ramp], -1)
    return tf.constant(image), tf.constant(np.stack([mask, fov], -1))


def aligned(image, target) -> bool:
    return bool(np.array_equal(image[..., :2].numpy(), target.numpy()))


def test_alignment_check_detects_drift():
    image, target = _encoded_pair()
    assert aligned(image, target)
    assert not aligned(image, tf.image.flip_left_right(target))  # mask moved alone


def test_joint_augmentation_keeps_image_and_mask_aligned():
    image, target = _encoded_pair()
    layouts = set()
    for step in range(24):
        seed = tf.constant([step, 7], tf.int64)
        new_image, new_target = augment_pair(image, target, seed, max_shift=4)
        assert aligned(new_image, new_target), f"drift at seed {step}"
        assert set(np.unique(new_target.numpy())) <= {0.0, 1.0}
        layouts.add(new_image[..., 2].numpy().tobytes())
    assert len(layouts) > 8  # the transforms really vary


def test_training_crops_are_aligned_square_and_seeded():
    image, target = _encoded_pair(height=30, width=20)  # smaller than the crop: padded
    seed = tf.constant([1, 2], tf.int64)
    crop, crop_target = training_example(image, target, seed, crop_size=32, max_shift=3)
    assert crop.shape == (32, 32, 3) and crop_target.shape == (32, 32, 2)
    assert aligned(crop, crop_target)
    again, _ = training_example(image, target, seed, crop_size=32, max_shift=3)
    assert np.array_equal(crop.numpy(), again.numpy())


def test_padding_for_whole_image_evaluation_is_outside_the_fov():
    image, target = _encoded_pair(height=21, width=18)
    padded, padded_target = pad_to_multiple(image, target, 8)
    assert padded.shape == (24, 24, 3) and padded_target.shape == (24, 24, 2)
    assert float(tf.reduce_sum(padded_target[21:, :, 1])) == 0.0
    assert float(tf.reduce_sum(padded_target[:, 18:, 1])) == 0.0


# ---------------------------------------------------------------- pipelines and model


def test_bundle_shapes_and_model_output(tmp_path):
    cfg = SegmentationConfig.smoke(data=str(make_folder(tmp_path, {"train": 5, "test": 3})))
    bundle = load_data(cfg)
    images, targets = next(iter(bundle.train))
    assert images.shape == (cfg.batch_size, 32, 32, 3)
    assert targets.shape == (cfg.batch_size, 32, 32, 2)
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    val_images, val_targets = next(iter(bundle.val))
    assert val_images.shape[1:] == (40, 36, 3)  # 40x36 is already a multiple of 4
    test_batches = list(bundle.test)
    assert sum(int(b[0].shape[0]) for b in test_batches) == 3
    assert bundle.train_examples >= cfg.steps_per_epoch * cfg.batch_size
    model = DOMAIN.build_model(cfg, bundle)
    assert model(val_images).shape == (val_images.shape[0], 40, 36, 1)


def test_unet_predicts_whole_images_of_any_padded_size():
    model = build_unet(base_filters=2, depth=3)
    for height, width in ((16, 24), (40, 32)):
        out = model(np.zeros((1, height, width, 3), "float32"))
        assert out.shape == (1, height, width, 1)
        assert 0.0 <= float(tf.reduce_min(out)) <= float(tf.reduce_max(out)) <= 1.0


def test_images_of_different_sizes_batch_with_fov_padding(tmp_path):
    root = make_folder(tmp_path, {"train": 3}, size=(40, 36))
    make_folder(tmp_path / "other", {"test": 2}, size=(28, 44), seed=1)
    (tmp_path / "other" / "test").rename(root / "test")
    write_png(root / "test" / "images" / "extra.png", np.zeros((33, 20, 3), np.uint8))
    write_png(root / "test" / "masks" / "extra.png", np.zeros((33, 20), np.uint8))
    write_png(root / "test" / "fov" / "extra.png", np.full((33, 20), 255, np.uint8))
    cfg = SegmentationConfig.smoke(data=str(root), eval_batch_size=3)
    ((images, targets),) = list(load_data(cfg).test)
    assert images.shape == (3, 36, 44, 3)  # 33 -> 36 and 44 stays: multiples of 4
    fov_pixels = float(tf.reduce_sum(targets[..., 1]))
    real_fov = sum((np.asarray(Image.open(p)) > 0).sum() for p in (root / "test" / "fov").iterdir())
    assert fov_pixels == real_fov


def test_evaluate_extra_writes_overlays_and_per_image_dice(tmp_path):
    cfg = SegmentationConfig.smoke(data=str(make_folder(tmp_path / "d", {"train": 3, "test": 3})))
    bundle = load_data(cfg)
    model = DOMAIN.build_model(cfg, bundle)
    run_dir = tmp_path / "run"
    extra = evaluate_extra(model, bundle, cfg, run_dir)
    assert 0.0 <= extra["test_dice_per_image"] <= 1.0
    png = np.asarray(Image.open(run_dir / "plots" / "test_overlays.png"))
    assert png.shape[1] == 3 * 36 and png.shape[0] >= cfg.overlay_count * 40
    tags = set()
    for event_file in (run_dir / "test").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(v.tag for v in event.summary.value)
    assert {"test_overlay/00_03", "test_overlay/01_04"} <= tags  # test images 03, 04


# ---------------------------------------------------------------- end to end


def test_train_end_to_end_through_the_cli_and_dice_rises(tmp_path):
    from common.cli import main

    data = make_folder(tmp_path / "data", {"train": 8, "test": 3})
    flags = "--epochs 3 --steps-per-epoch 6 --learning-rate 0.01 --monitor-every 0 --verbose 0"
    code = main(
        ["train", "medical_segmentation", "--smoke", "--data", str(data)]
        + ["--output", str(tmp_path / "runs"), "--run-name", "e2e"]
        + flags.split()
    )
    assert code == 0
    run_dir = tmp_path / "runs" / "medical_segmentation" / "e2e"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    dice = summary["history"]["dice"]
    assert dice[-1] > dice[0] + 0.1, dice
    assert summary["test_dice"] > 0.3
    assert 0.0 <= summary["test_iou"] <= summary["test_dice"] <= 1.0
    assert "test_dice_per_image" in summary
    assert 0.0 <= summary["test_flip_dice"] <= 1.0
    assert 0.0 <= summary["val_flip_iou"] <= summary["val_flip_dice"] <= 1.0
    assert (run_dir / "plots" / "test_overlays.png").is_file()


# ---------------------------------------------------------------- real data


def test_dsb_nuclei_loads_through_the_folder_reader(shared_data):
    val = read_split(shared_data / "medical_segmentation" / "dsb2018_nuclei" / "val")
    assert len(val) == 100
    assert all(s.fov.all() and s.image.shape == (256, 256, 3) for s in val)
    assert sum(not s.mask.any() for s in val) == 1  # the one empty val mask


def test_search_space_gives_valid_config_overrides():
    import keras_tuner

    cfg = SegmentationConfig.smoke()
    hp = keras_tuner.HyperParameters()
    overrides = DOMAIN.search_space(hp, cfg)
    tuned = cfg.replace(**overrides)
    assert 1e-4 <= tuned.learning_rate <= 1e-2
    assert {"learning_rate", "optimizer", "schedule", "base_filters"} <= set(hp.values)
    assert DOMAIN.objective == "val_dice" and DOMAIN.direction == "max"
