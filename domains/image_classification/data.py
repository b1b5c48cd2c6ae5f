"""Image data: CIFAR-10 from tensorflow-datasets, a NumPy .npz, or a folder per class.

Every reader returns unbatched (uint8 image, int64 label) datasets plus the class names
and image shape; `load_data` then builds the same pipelines for all three: train is cached,
shuffled with the run's seed, augmented, batched and repeated; val and test are single
passes. Bad inputs are found here, before training, and raised as `UserError`s naming the
file or folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from common.data import existing_path, load_tfds
from common.domain import DataBundle
from common.errors import UserError
from domains.image_classification.augment import augment_dataset

LOCAL_HELP = (
    "an .npz with x_train, y_train, x_test, y_test, class_names, or a folder with "
    "train/<class>/*.png|jpg and test/<class>/..."
)
# What keras.utils.image_dataset_from_directory reads.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}
# What tf.io.decode_image reads (by content, whatever the file name says).
DECODABLE_FORMATS = ("BMP", "GIF", "JPEG", "MPO", "PNG", "WEBP")  # MPO: camera JPEGs
SHUFFLE_BUFFER_MAX = 50_000


@dataclass
class ImageSplits:
    """Unbatched (uint8 image, int64 label) datasets and what describes them."""

    train: tf.data.Dataset
    val: tf.data.Dataset | None
    test: tf.data.Dataset | None
    train_examples: int
    class_names: list[str]
    image_shape: tuple[int, int, int]
    description: str


# ## Load the data


def read_tfds(cfg) -> ImageSplits:
    """`cfg.dataset` from TFDS; validation is the last `val_fraction` of train."""
    percent = round(cfg.val_fraction * 100)
    split_names = (
        [f"train[:{100 - percent}%]", f"train[{100 - percent}%:]", "test"]
        if percent
        else ["train", "test"]
    )
    datasets, info = load_tfds(cfg.dataset, split_names, local_help=LOCAL_HELP, as_supervised=True)
    image_shape = tuple(info.features["image"].shape)
    if None in image_shape:
        raise UserError(
            f"tensorflow-datasets '{cfg.dataset}' has images of varying size "
            f"{image_shape}; resize them into a class folder and pass it with --data."
        )
    to_pair = lambda image, label: (image, tf.cast(label, tf.int64))  # noqa: E731
    datasets = [ds.map(to_pair) for ds in datasets]
    train, test = datasets[0], datasets[-1]
    val = datasets[1] if percent else None
    return ImageSplits(
        train=train,
        val=val,
        test=test,
        train_examples=_count(train, info, split_names[0]),
        class_names=list(info.features["label"].names),
        image_shape=image_shape,
        description=f"tfds:{cfg.dataset} ({split_names[0]})",
    )


def _count(dataset: tf.data.Dataset, info, split: str) -> int:
    try:
        return info.splits[split].num_examples
    except KeyError:  # split metadata missing (e.g. under tfds.testing.mock_data)
        count = int(dataset.cardinality())
        if count >= 0:
            return count
        return int(dataset.reduce(0, lambda total, _: total + 1))


def read_npz(path: Path, cfg) -> ImageSplits:
    """x_train, y_train, x_test, y_test (+ optional x_val, y_val, class_names)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as error:  # not a zip, truncated, pickled objects ...
        raise UserError(
            f"{path}: cannot read it as a NumPy .npz ({type(error).__name__}: {error}). "
            "Save the arrays with numpy.savez."
        ) from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise UserError(
            f"{path}: missing array(s) {', '.join(missing)}; found "
            f"{', '.join(sorted(arrays)) or 'none'}. Expected x_train, y_train, x_test, "
            "y_test and class_names."
        )
    images = {s: _npz_images(path, arrays, s) for s in ("train", "val", "test")}
    labels = {s: _npz_labels(path, arrays, s, images[s]) for s in images}
    shape = images["train"].shape[1:]
    for split in ("val", "test"):
        if images[split] is not None and images[split].shape[1:] != shape:
            raise UserError(
                f"{path}: x_{split} images have shape {images[split].shape[1:]} but "
                f"x_train images have {shape}; all splits need the same size and channels."
            )
    _check_npz_classes(path, labels)
    num_classes = int(max(labels[s].max() for s in labels if labels[s] is not None)) + 1
    if "class_names" in arrays:
        class_names = [str(name) for name in arrays["class_names"].reshape(-1)]
        if len(class_names) < num_classes:
            raise UserError(
                f"{path}: labels go up to {num_classes - 1} but class_names has only "
                f"{len(class_names)} entries."
            )
    else:
        class_names = [str(index) for index in range(num_classes)]
    train_x, train_y = images["train"], labels["train"]
    val_x, val_y = images["val"], labels["val"]
    if val_x is None and cfg.val_fraction:
        order = np.random.default_rng(cfg.seed).permutation(len(train_x))
        count = _carved_count(len(train_x), cfg.val_fraction, path)
        val_x, val_y = train_x[order[:count]], train_y[order[:count]]
        train_x, train_y = train_x[order[count:]], train_y[order[count:]]
    pairs = lambda x, y: tf.data.Dataset.from_tensor_slices((x, y))  # noqa: E731
    return ImageSplits(
        train=pairs(train_x, train_y),
        val=pairs(val_x, val_y) if val_x is not None else None,
        test=pairs(images["test"], labels["test"]),
        train_examples=len(train_x),
        class_names=class_names,
        image_shape=tuple(int(side) for side in shape),
        description=f"{path.name} ({len(train_x)} train images)",
    )


def _npz_images(path: Path, arrays: dict, split: str) -> np.ndarray | None:
    name = f"x_{split}"
    if name not in arrays:
        return None
    images = arrays[name]
    if images.ndim == 3:  # (n, height, width): grey images without a channel axis
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[-1] not in COLOR_MODES or len(images) == 0:
        raise UserError(
            f"{path}: {name} has shape {images.shape}; expected (images, height, width, "
            "channels) with 1, 3 or 4 channels and at least one image."
        )
    if not np.issubdtype(images.dtype, np.number) or np.issubdtype(
        images.dtype, np.complexfloating
    ):
        raise UserError(f"{path}: {name} has dtype {images.dtype}; expected uint8 pixels.")
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.floating) and images.max(initial=0) <= 1.0:
        images = images * 255.0  # floats in [0, 1]
    low, high = images.min(initial=0), images.max(initial=0)
    if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high > 255:
        raise UserError(
            f"{path}: {name} pixel values range over [{low}, {high}]; expected 0..255 "
            "(uint8) or 0..1 (float)."
        )
    return np.round(images).astype(np.uint8)


def _npz_labels(path: Path, arrays: dict, split: str, images) -> np.ndarray | None:
    name = f"y_{split}"
    if images is None:
        if name in arrays:
            raise UserError(f"{path}: has {name} but no x_{split}.")
        return None
    if name not in arrays:
        raise UserError(f"{path}: has x_{split} but no {name}.")
    labels = arrays[name]
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(
            f"{path}: {name} has shape {labels.shape} and dtype {labels.dtype}; expected "
            "one integer class index per image."
        )
    if len(labels) != len(images):
        raise UserError(
            f"{path}: {name} has {len(labels)} labels but x_{split} has {len(images)} images."
        )
    if labels.min() < 0:
        raise UserError(f"{path}: {name} has a negative label {labels.min()}.")
    return labels.astype(np.int64)


def _check_npz_classes(path: Path, labels: dict) -> None:
    """At least two classes to learn, and no val/test class that train never shows."""
    seen = set(np.unique(labels["train"]).tolist())
    if len(seen) < 2:
        raise UserError(
            f"{path}: y_train holds only class {sorted(seen)}; a classifier needs at least "
            "2 classes in the training split."
        )
    for split in ("val", "test"):
        if labels[split] is None:
            continue
        unseen = sorted(set(np.unique(labels[split]).tolist()) - seen)
        if unseen:
            raise UserError(
                f"{path}: y_{split} holds class(es) {unseen} that y_train lacks; every "
                "class to evaluate must be in the training split."
            )


def read_folder(root: Path, cfg) -> ImageSplits:
    """`root/train/<class>/*`, `root/test/<class>/*`, optional `root/val/<class>/*`."""
    import keras

    train_dir = root / "train"
    if not train_dir.is_dir():
        raise UserError(
            f"{root}: no train/ folder. Expected train/<class>/*.png|jpg, "
            "test/<class>/... and optionally val/<class>/..."
        )
    class_names = _class_folders(train_dir)
    if not class_names:
        raise UserError(f"{train_dir}: no class folders; expected train/<class>/*.png.")
    if len(class_names) < 2:
        raise UserError(
            f"{train_dir}: only one class folder ({class_names[0]}/); a classifier needs at "
            "least 2 classes, one folder each."
        )
    split_dirs = {"train": train_dir}
    for split in ("val", "test"):
        if (root / split).is_dir():
            split_dirs[split] = root / split
    files = {}
    for split, directory in split_dirs.items():
        names = _class_folders(directory)
        if names != class_names:
            raise UserError(
                f"{directory}: class folders differ from train/'s: missing "
                f"{sorted(set(class_names) - set(names)) or 'none'}, extra "
                f"{sorted(set(names) - set(class_names)) or 'none'}. Every split needs "
                "the same class folders."
            )
        files[split] = [path for name in class_names for path in _image_files(directory / name)]
    height, width, channels = _check_images(files)
    color_mode = COLOR_MODES[channels]

    def read(directory: Path, **kwargs):
        return keras.utils.image_dataset_from_directory(
            directory,
            labels="inferred",
            label_mode="int",
            class_names=class_names,
            color_mode=color_mode,
            batch_size=None,
            image_size=(height, width),
            seed=cfg.seed,
            verbose=False,
            **kwargs,
        )

    to_pair = lambda image, label: (  # noqa: E731
        tf.cast(tf.round(image), tf.uint8),
        tf.cast(label, tf.int64),
    )
    train_count = len(files["train"])
    if "val" in split_dirs or not cfg.val_fraction:
        train = read(train_dir, shuffle=False)
        val = read(split_dirs["val"], shuffle=False) if "val" in split_dirs else None
    else:
        val_count = _carved_count(train_count, cfg.val_fraction, train_dir)
        train, val = read(train_dir, shuffle=True, validation_split=cfg.val_fraction, subset="both")
        train_count -= val_count
    test = read(split_dirs["test"], shuffle=False) if "test" in split_dirs else None
    return ImageSplits(
        train=train.map(to_pair),
        val=val.map(to_pair) if val is not None else None,
        test=test.map(to_pair) if test is not None else None,
        train_examples=train_count,
        class_names=class_names,
        image_shape=(height, width, channels),
        description=f"{root.name}/ ({train_count} train images, {len(class_names)} classes)",
    )


def _class_folders(directory: Path) -> list[str]:
    return sorted(
        entry.name
        for entry in os.scandir(directory)
        if entry.is_dir() and not entry.name.startswith(".")
    )


def _image_files(class_dir: Path) -> list[Path]:
    """The images of one class folder; anything else in it is an error."""
    paths = []
    for entry in sorted(os.scandir(class_dir), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue  # .DS_Store and friends
        path = Path(entry.path)
        if entry.is_dir() or path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise UserError(
                f"{path}: not an image file; class folders may hold only "
                f"{', '.join(IMAGE_EXTENSIONS)} files. Move it out of {class_dir}."
            )
        paths.append(path)
    if not paths:
        raise UserError(
            f"{class_dir}: class folder has no images; add some or remove the folder "
            "(from every split)."
        )
    return paths


def _check_images(files: dict[str, list[Path]]) -> tuple[int, int, int]:
    """Decode every image once; return (height, width, channels) of the first.

    Other sizes are resized to the first one's while reading; other channel counts are
    an error, since converting them silently hides mixed-up data.
    """
    from PIL import Image

    first: tuple[int, int, int] | None = None
    first_path = None
    for paths in files.values():
        for path in paths:
            try:
                with Image.open(path) as image:
                    image.load()
                    mode, (width, height) = image.mode, image.size
                    kind = image.format
            except Exception as error:  # PIL raises many types for bad files
                raise UserError(
                    f"{path}: not a readable image ({type(error).__name__}: {error}). "
                    "Replace or remove the file."
                ) from None
            if kind not in DECODABLE_FORMATS:  # PIL reads more than TensorFlow decodes
                raise UserError(
                    f"{path}: holds {kind} data, which TensorFlow cannot decode; save it "
                    "as PNG or JPEG."
                )
            channels = _mode_channels(mode, path)
            if first is None:
                first, first_path = (height, width, channels), path
            elif channels != first[2]:
                raise UserError(
                    f"{path}: has {channels} channel(s) ({mode}) but {first_path} has "
                    f"{first[2]}; convert all images to the same mode (e.g. RGB)."
                )
    return first


def _mode_channels(mode: str, path: Path) -> int:
    if mode in ("1", "L", "I", "I;16", "F"):
        return 1
    if mode in ("RGB", "P", "YCbCr", "CMYK"):
        return 3
    if mode in ("RGBA", "PA"):
        return 4
    raise UserError(f"{path}: image mode {mode} is not supported; save it as grey, RGB or RGBA.")


def _carved_count(examples: int, fraction: float, source: Path) -> int:
    count = int(fraction * examples)
    if count < 1 or count >= examples:
        raise UserError(
            f"{source}: {examples} training images are too few to carve a validation "
            f"split of {fraction:.0%}; add a val/ split or x_val, or set --val-fraction 0."
        )
    return count


def read_splits(cfg) -> ImageSplits:
    """Pick the reader from `cfg.data`: unset -> TFDS, .npz file, or folder."""
    if cfg.data is None:
        return read_tfds(cfg)
    path = existing_path(cfg.data, "image data")
    if path.is_dir():
        return read_folder(path, cfg)
    if path.suffix.lower() == ".npz":
        return read_npz(path, cfg)
    raise UserError(f"{path}: unsupported image data; expected {LOCAL_HELP}.")


# ## Prepare the data


def training_pipeline(cached, splits, cfg, to_float):
    """Shuffled (and augmented) batches of the cached training split, forever."""
    train = cached.shuffle(
        min(splits.train_examples, SHUFFLE_BUFFER_MAX),
        seed=cfg.seed,
        reshuffle_each_iteration=True,
    )
    if cfg.augment:
        train = augment_dataset(
            train,
            seed=cfg.seed,
            padding=min(cfg.crop_padding, min(splits.image_shape[:2]) - 1),
            flip=cfg.horizontal_flip,
            cutout=min(cfg.cutout, min(splits.image_shape[:2]) // 2),  # a small image keeps half
        )
    train = (
        train.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(cfg.batch_size, drop_remainder=True)
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    return train


def load_data(cfg) -> DataBundle:
    """The domain's `load_data`: batched pipelines ready for `model.fit`."""
    splits = read_splits(cfg)
    if splits.train_examples < cfg.batch_size:
        raise UserError(
            f"{cfg.data or cfg.dataset}: {splits.train_examples} training images are "
            f"fewer than one batch (batch_size={cfg.batch_size}); lower --batch-size."
        )
    to_float = lambda image, label: (tf.cast(image, tf.float32), label)  # noqa: E731
    cached = splits.train.cache()

    def make_train():
        return training_pipeline(cached, splits, cfg, to_float)

    def single_pass(dataset):
        if dataset is None:
            return None
        return (
            dataset.cache()
            .map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(cfg.batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )

    info: dict[str, Any] = {
        "class_names": splits.class_names,
        "num_classes": len(splits.class_names),
        "image_shape": splits.image_shape,
    }
    return DataBundle(
        train=make_train(),
        make_train=make_train,
        val=single_pass(splits.val),
        test=single_pass(splits.test),
        train_examples=splits.train_examples,
        description=splits.description,
        info=info,
    )
