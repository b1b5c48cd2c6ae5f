"""Image classification data: the .npz, class-folder and TFDS readers, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from common.errors import UserError
from domains.image_classification.config import ImageClassificationConfig
from domains.image_classification.data import load_data

CLASSES = ("cat", "dog", "frog")


def label_pixel(label: int) -> int:
    """Every fixture image of class `label` is filled with this value."""
    return 40 + 60 * label


def write_npz(path, *, train=30, test=9, classes=3, shape=(8, 8, 3), **changes):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", train), ("test", test)):
        labels = rng.integers(0, classes, count)
        images = np.empty((count, *shape), np.uint8)
        images[:] = np.array([label_pixel(y) for y in labels])[:, None, None, None]
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images, labels
    arrays["class_names"] = np.array([f"class{i}" for i in range(classes)])
    arrays.update(changes)
    arrays = {name: value for name, value in arrays.items() if value is not None}
    np.savez(path, **arrays)
    return path


def write_folder(root, *, splits=("train", "test"), per_class=5, size=(6, 7), mode="RGB"):
    for split in splits:
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(per_class):
                color = label_pixel(label)
                fill = color if mode == "L" else (color,) * len(mode)
                Image.new(mode, size, fill).save(folder / f"{index}.png")
    return root


def config(data, **overrides):
    return ImageClassificationConfig.smoke(**{"data": str(data), "batch_size": 4, **overrides})


def all_pairs(dataset):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.concatenate(images), np.concatenate(labels)


def assert_labels_match_pixels(images, labels):
    expected = np.array([label_pixel(y) for y in labels])
    np.testing.assert_array_equal(images.reshape(len(images), -1).min(axis=1), expected)
    np.testing.assert_array_equal(images.reshape(len(images), -1).max(axis=1), expected)


# ## .npz


def test_npz_carves_validation_and_keeps_labels_with_images(tmp_path):
    bundle = load_data(config(write_npz(tmp_path / "d.npz"), val_fraction=0.2))
    assert bundle.train_examples == 24
    assert bundle.info["class_names"] == ["class0", "class1", "class2"]
    assert bundle.info["image_shape"] == (8, 8, 3)
    images, labels = next(iter(bundle.train))
    assert images.shape == (4, 8, 8, 3) and images.dtype == tf.float32
    assert_labels_match_pixels(images.numpy(), labels.numpy())
    val_images, val_labels = all_pairs(bundle.val)
    assert len(val_labels) == 6
    assert_labels_match_pixels(val_images, val_labels)
    assert len(all_pairs(bundle.test)[1]) == 9


def test_npz_validation_split_is_reproducible_per_seed(tmp_path):
    path = write_npz(tmp_path / "d.npz", train=200)
    first = all_pairs(load_data(config(path, seed=1)).val)[1]
    again = all_pairs(load_data(config(path, seed=1)).val)[1]
    other = all_pairs(load_data(config(path, seed=2)).val)[1]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_npz_grey_images_without_channel_axis(tmp_path):
    path = tmp_path / "grey.npz"
    np.savez(
        path,
        x_train=np.zeros((12, 5, 5), np.uint8),
        y_train=np.arange(12) % 2,
        x_test=np.zeros((4, 5, 5), np.uint8),
        y_test=np.arange(4) % 2,
    )
    bundle = load_data(config(path))
    assert bundle.info["image_shape"] == (5, 5, 1)
    assert bundle.info["class_names"] == ["0", "1"]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"y_test": None}, "missing array"),
        ({"y_train": np.zeros(5, np.int64)}, "5 labels but x_train has 30"),
        ({"x_test": np.zeros((9, 8, 8, 1), np.uint8)}, "same size and channels"),
        ({"class_names": np.array(["a", "b"])}, "class_names has only 2"),
        ({"x_train": np.full((30, 8, 8, 3), 300.0)}, "pixel values"),
        ({"y_train": np.full(30, 0.5)}, "one integer class index"),
        ({"x_train": np.zeros((30, 8), np.uint8)}, "expected \\(images, height"),
    ],
)
def test_npz_bad_contents_name_the_file(tmp_path, changes, message):
    path = write_npz(tmp_path / "bad.npz", **changes)
    with pytest.raises(UserError, match=message) as caught:
        load_data(config(path))
    assert str(path) in str(caught.value)


def test_npz_that_is_not_an_archive(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_text("not a zip file")
    with pytest.raises(UserError, match="cannot read it as a NumPy .npz") as caught:
        load_data(config(path))
    assert str(path) in str(caught.value)


def test_missing_path_and_unknown_file_type(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_data(config(tmp_path / "nowhere.npz"))
    other = tmp_path / "images.csv"
    other.write_text("a,b\n")
    with pytest.raises(UserError, match="unsupported image data") as caught:
        load_data(config(other))
    assert str(other) in str(caught.value)


def test_batch_larger_than_train_split(tmp_path):
    path = write_npz(tmp_path / "d.npz", train=10)
    with pytest.raises(UserError, match="fewer than one batch"):
        load_data(config(path, batch_size=16))


# ## Class folders


def test_folder_reads_classes_size_and_labels(tmp_path):
    root = write_folder(tmp_path / "images", per_class=10)
    bundle = load_data(config(root, val_fraction=0.2, augment=False))
    assert bundle.info["class_names"] == list(CLASSES)
    assert bundle.info["image_shape"] == (7, 6, 3)
    assert bundle.train_examples == 24
    images, labels = next(iter(bundle.train))
    assert images.shape == (4, 7, 6, 3)
    assert_labels_match_pixels(images.numpy(), labels.numpy())
    val_images, val_labels = all_pairs(bundle.val)
    assert len(val_labels) == 6
    assert_labels_match_pixels(val_images, val_labels)
    test_images, test_labels = all_pairs(bundle.test)
    assert sorted(test_labels.tolist()) == sorted([0, 1, 2] * 10)
    assert_labels_match_pixels(test_images, test_labels)


def test_folder_val_split_is_reproducible_per_seed(tmp_path):
    root = write_folder(tmp_path / "images", splits=("train",), per_class=30)
    first = all_pairs(load_data(config(root, seed=3)).val)[1]
    again = all_pairs(load_data(config(root, seed=3)).val)[1]
    other = all_pairs(load_data(config(root, seed=4)).val)[1]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert len(first) == 9


def test_folder_with_val_split_and_grey_images(tmp_path):
    root = write_folder(tmp_path / "g", splits=("train", "val", "test"), mode="L")
    bundle = load_data(config(root))
    assert bundle.info["image_shape"] == (7, 6, 1)
    assert bundle.train_examples == 15
    val_images, val_labels = all_pairs(bundle.val)
    assert len(val_labels) == 15
    assert_labels_match_pixels(val_images, val_labels)


def test_folder_resizes_odd_sizes_to_the_first(tmp_path):
    root = write_folder(tmp_path / "images")
    Image.new("RGB", (12, 3), (100, 100, 100)).save(root / "test" / "dog" / "big.png")
    bundle = load_data(config(root))
    images, _ = all_pairs(bundle.test)
    assert images.shape == (16, 7, 6, 3)


def corrupt_file(root):
    path = root / "train" / "dog" / "2.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return path


def non_image_file(root):
    path = root / "test" / "cat" / "notes.txt"
    path.write_text("a note")
    return path


def empty_class_folder(root):
    folder = root / "test" / "frog"
    for path in folder.iterdir():
        path.unlink()
    return folder


def missing_class_folder(root):
    folder = root / "test" / "frog"
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    return root / "test"


def other_channel_count(root):
    path = root / "train" / "frog" / "1.png"
    Image.new("L", (6, 7), 10).save(path)
    return path


def no_train_folder(root):
    (root / "train").rename(root / "training")
    return root


@pytest.mark.parametrize(
    "break_it, message",
    [
        (corrupt_file, "not a readable image"),
        (non_image_file, "not an image file"),
        (empty_class_folder, "class folder has no images"),
        (missing_class_folder, "class folders differ from train"),
        (other_channel_count, "has 1 channel"),
        (no_train_folder, "no train/ folder"),
    ],
)
def test_folder_bad_inputs_name_the_file_or_folder(tmp_path, break_it, message):
    root = write_folder(tmp_path / "images")
    culprit = break_it(root)
    with pytest.raises(UserError, match=message) as caught:
        load_data(config(root))
    assert str(culprit) in str(caught.value)


# ## TFDS


def test_tfds_cifar10_under_mock_data(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    monkeypatch.setenv("LRSUITE_NETWORK_PROBE_HOST", "localhost")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    cfg = ImageClassificationConfig.smoke(val_fraction=0.2)
    with tfds.testing.mock_data(num_examples=20):
        bundle = load_data(cfg)
        images, labels = next(iter(bundle.train))
        test_batches = list(bundle.test)
        val_batches = list(bundle.val)
    assert bundle.info["num_classes"] == 10
    assert bundle.info["image_shape"] == (32, 32, 3)
    assert images.shape == (8, 32, 32, 3) and labels.dtype == tf.int64
    assert sum(len(batch[1]) for batch in test_batches) == 20
    assert val_batches and bundle.description.startswith("tfds:cifar10")


def test_tfds_offline_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LRSUITE_NETWORK_PROBE_HOST", "nonexistent.invalid")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(UserError, match="could not download 'cifar10'.*--data PATH"):
        load_data(ImageClassificationConfig.smoke())


# ## Config


@pytest.mark.parametrize(
    "field, value",
    [
        ("val_fraction", 1.0),
        ("base_filters", 0),
        ("blocks_per_stage", -1),
        ("backbone", "vgg"),
        ("backbone_lr_scale", 2.0),
        ("dropout", 1.0),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=f"Received: {field}={value!r}"):
        ImageClassificationConfig.smoke(**{field: value})
