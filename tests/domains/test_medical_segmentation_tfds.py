"""Tests of the Kvasir-SEG TFDS builder (on a small archive laid out like the real one)
and of the domain's TFDS path (mocked data, and the fast offline failure)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import domains.medical_segmentation  # noqa: F401  (registers kvasir_seg)
from common.errors import UserError
from domains.medical_segmentation.config import SegmentationConfig
from domains.medical_segmentation.data import load_data
from domains.medical_segmentation.tfds_builder import KvasirSeg, split_names
from tests.domains.test_medical_segmentation_fixtures import make_kvasir_folder, make_kvasir_zip


def _prepare(tmp_path, manual_dir):
    builder = KvasirSeg(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def _check_examples(builder, count):
    sizes = {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")}
    assert sizes == {
        "train": count - 2 * round(count / 10),
        "validation": round(count / 10),
        "test": round(count / 10),
    }
    names = []
    for split in sizes:
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            image, mask = example["image"], example["segmentation_mask"]
            assert image.shape[:2] == mask.shape[:2] and mask.shape[-1] == 1
            # JPEG masks are thresholded to clean 0/1 class ids.
            assert set(np.unique(mask)) == {0, 1}
            names.append(example["file_name"].decode())
    assert len(names) == len(set(names)) == count


def test_builder_reads_the_archive_from_manual_dir(tmp_path):
    archive = make_kvasir_zip(tmp_path / "manual_src", count=10)
    manual = tmp_path / "manual"
    manual.mkdir()
    archive.rename(manual / archive.name)
    builder = _prepare(tmp_path, manual)
    _check_examples(builder, 10)
    assert "kvasir" in builder.info.citation.lower()
    assert "research and educational" in builder.info.redistribution_info.license


def test_builder_reads_the_extracted_folder_from_manual_dir(tmp_path):
    make_kvasir_folder(tmp_path / "manual", count=10)
    _check_examples(_prepare(tmp_path, tmp_path / "manual"), 10)


def test_builder_names_a_lone_image(tmp_path):
    root = make_kvasir_folder(tmp_path / "manual", count=4)
    lone = sorted((root / "masks").iterdir())[0]
    lone.unlink()
    with pytest.raises(ValueError, match=lone.stem):
        _prepare(tmp_path, tmp_path / "manual")


def test_tfds_load_finds_the_registered_builder(tmp_path):
    make_kvasir_folder(tmp_path / "manual", count=10)
    dataset = tfds.load(
        "kvasir_seg",
        split="validation",
        data_dir=str(tmp_path / "tfds"),
        download_and_prepare_kwargs={
            "download_config": tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual"))
        },
    )
    assert len(list(dataset)) == 1


def test_split_is_reproducible_disjoint_and_80_10_10():
    names = [f"image{i:04d}" for i in range(1000)]
    splits = split_names(names)
    assert {k: len(v) for k, v in splits.items()} == {"train": 800, "validation": 100, "test": 100}
    assert set().union(*splits.values()) == set(names)
    assert split_names(list(reversed(names))) == splits


def _fake_examples(self, split, **kwargs):
    """Consistent mock examples: image and mask of one size, mask 0/1."""
    rng = np.random.default_rng(0)
    images, masks, names = [], [], []
    for i in range(6):
        height, width = 40 + 8 * (i % 2), 56
        images.append(rng.integers(0, 255, (height, width, 3)).astype(np.uint8))
        mask = np.zeros((height, width, 1), np.uint8)
        mask[5:20, 10:30] = 1
        masks.append(mask)
        names.append(f"{split}{i}")
    return tf.data.Dataset.from_generator(
        lambda: (
            {"image": x, "segmentation_mask": y, "file_name": n}
            for x, y, n in zip(images, masks, names, strict=True)
        ),
        output_signature={
            "image": tf.TensorSpec((None, None, 3), tf.uint8),
            "segmentation_mask": tf.TensorSpec((None, None, 1), tf.uint8),
            "file_name": tf.TensorSpec((), tf.string),
        },
    )


def test_domain_loads_tfds_data_resized(tfds_mocked):
    cfg = SegmentationConfig.smoke(image_size=48)
    with tfds.testing.mock_data(num_examples=6, as_dataset_fn=_fake_examples):
        bundle = load_data(cfg)
    assert bundle.info["train_images"] == 6 and bundle.info["test_images"] == 6
    images, targets = next(iter(bundle.test))
    assert images.shape[1:] == (48, 48, 3) and targets.shape[1:] == (48, 48, 2)
    assert set(np.unique(targets.numpy())) == {0.0, 1.0}
    assert "kvasir_seg" in bundle.description


def test_domain_fails_fast_offline(offline):
    with pytest.raises(UserError, match="kvasir_seg.*--data"):
        load_data(SegmentationConfig.smoke())
