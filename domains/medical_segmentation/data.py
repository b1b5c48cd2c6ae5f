"""Load image/mask pairs from a folder or from TFDS, and build the tf.data pipelines.

Local layout (`--data PATH`)::

    PATH/train/images/NAME.png   PATH/train/masks/NAME.png   [PATH/train/fov/NAME.png]
    PATH/val/...  (optional; also `validation/`)   PATH/test/...  (optional)

Files pair up by name without extension. Masks are single-channel and binary (0/255
or 0/1); the optional field-of-view (FOV) masks mark the pixels that count in the loss
and the metrics (without fov/, every pixel counts). Every problem raises `UserError`
naming the file, before training starts.

Each example becomes (image, target): image float32 in [0, 1] with 3 channels, target
float32 (H, W, 2) holding the mask and the FOV. Training takes random crops with joint
augmentation; validation and test keep whole images, zero-padded (FOV 0) to a multiple
of 2**depth so the U-Net's down- and up-sampling line up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from common.data import existing_path, load_tfds
from common.domain import DataBundle
from common.errors import UserError
from domains.medical_segmentation.augment import training_example
from domains.medical_segmentation.config import (
    TFDS_DEFAULT_IMAGE_SIZE,
    SegmentationConfig,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
VAL_FOLDERS = ("val", "validation")
LOCAL_HELP = (
    "a folder with train/ (and optional val/, test/) splits, each holding images/ "
    "and masks/ with matching file names and an optional fov/"
)


@dataclass
class Sample:
    """One image with its binary mask and field of view, all at the same size."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) uint8, 0/1
    fov: np.ndarray  # (H, W) uint8, 0/1

    def target(self) -> np.ndarray:
        return np.stack([self.mask, self.fov], axis=-1)


# ---------------------------------------------------------------- reading files


def _files_by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in files:
            raise UserError(
                f"{path}: two files named {path.stem!r} in {folder} "
                f"({files[path.stem].name} and {path.name}). Keep one."
            )
        files[path.stem] = path
    return files


def _open(path: Path, mode: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image.convert(mode))
    # SyntaxError: PIL's word for a PNG whose chunk lengths are damaged.
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        raise UserError(
            f"{path}: unreadable image ({error}). Replace or remove the file."
        ) from None


def binary_mask(array: np.ndarray, path: Path | str) -> np.ndarray:
    """0/1 uint8 from a 0/255 or 0/1 mask; any other value is a UserError naming `path`."""
    values = np.unique(array)
    if np.isin(values, (0, 1)).all():
        return array.astype(np.uint8)
    if np.isin(values, (0, 255)).all():
        return (array // 255).astype(np.uint8)
    shown = ", ".join(str(v) for v in values[:6]) + (" ..." if len(values) > 6 else "")
    raise UserError(
        f"{path}: mask values must be background/foreground (0 and 255, or 0 and 1); "
        f"found {len(values)} values: {shown}. Save masks as binary PNG (lossy JPEG "
        "adds in-between values)."
    )


def _check_size(path: Path, array: np.ndarray, image_path: Path, image: np.ndarray) -> None:
    if array.shape[:2] != image.shape[:2]:
        raise UserError(
            f"{path}: size {array.shape[1]}x{array.shape[0]} differs from its image "
            f"{image_path.name} ({image.shape[1]}x{image.shape[0]}). A mask must have "
            "its image's width and height."
        )


def _unmatched(names: set[str], files: dict[str, Path], other: Path, what: str) -> None:
    if names:
        first = files[sorted(names)[0]]
        raise UserError(
            f"{first}: {what} with no file of the same name in {other}"
            f"{f' (and {len(names) - 1} more)' if len(names) > 1 else ''}. "
            "Images, masks and fov files pair up by name."
        )


def read_split(split_dir: Path) -> list[Sample]:
    """Read one split folder (images/, masks/, optional fov/) into memory.

    Raises:
        UserError: a missing folder, an image without a mask or the reverse, an
            unreadable file, a mask or fov whose size differs from its image, or
            a mask that is not binary; the message names the file.
    """
    images_dir, masks_dir, fov_dir = (split_dir / n for n in ("images", "masks", "fov"))
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise UserError(
                f"{folder}: folder not found. Each split needs images/ and masks/ "
                "with matching file names (fov/ is optional)."
            )
    images, masks = _files_by_stem(images_dir), _files_by_stem(masks_dir)
    fovs = _files_by_stem(fov_dir) if fov_dir.is_dir() else None
    if not images:
        raise UserError(f"{images_dir}: no images ({', '.join(IMAGE_SUFFIXES)}). Add image files.")
    _unmatched(set(images) - set(masks), images, masks_dir, "image")
    _unmatched(set(masks) - set(images), masks, images_dir, "mask")
    if fovs is not None:
        _unmatched(set(images) - set(fovs), images, fov_dir, "image")
        _unmatched(set(fovs) - set(images), fovs, images_dir, "fov mask")
    samples = []
    for name, image_path in images.items():
        image = _open(image_path, "RGB")
        mask = _open(masks[name], "L")
        _check_size(masks[name], mask, image_path, image)
        mask = binary_mask(mask, masks[name])
        if fovs is None:
            fov = np.ones_like(mask)
        else:
            fov = _open(fovs[name], "L")
            _check_size(fovs[name], fov, image_path, image)
            fov = binary_mask(fov, fovs[name])
        samples.append(Sample(name, image, mask, fov))
    return samples


def read_folder(root: Path) -> dict[str, list[Sample] | None]:
    """{'train': [...], 'val': [...] or None, 'test': [...] or None} from a data folder."""
    if not root.is_dir():
        raise UserError(f"{root}: not a folder. --data expects {LOCAL_HELP}.")
    if not (root / "train").is_dir():
        raise UserError(f"{root / 'train'}: folder not found. --data expects {LOCAL_HELP}.")
    val_dirs = [root / n for n in VAL_FOLDERS if (root / n).is_dir()]
    if len(val_dirs) > 1:
        raise UserError(f"{root}: both val/ and validation/ exist. Keep one.")
    return {
        "train": read_split(root / "train"),
        "val": read_split(val_dirs[0]) if val_dirs else None,
        "test": read_split(root / "test") if (root / "test").is_dir() else None,
    }


# ---------------------------------------------------------------- TFDS


def read_tfds(cfg: SegmentationConfig) -> dict[str, list[Sample] | None]:
    """The three splits of the TFDS dataset `cfg.tfds_name` as in-memory samples."""
    import tensorflow_datasets as tfds

    # Importing the package registers the builder; this import keeps it explicit.
    from domains.medical_segmentation import tfds_builder  # noqa: F401

    datasets, _ = load_tfds(cfg.tfds_name, ["train", "validation", "test"], local_help=LOCAL_HELP)
    size = cfg.image_size or TFDS_DEFAULT_IMAGE_SIZE
    splits: dict[str, list[Sample] | None] = {}
    for split, dataset in zip(("train", "val", "test"), datasets, strict=True):
        samples = []
        for index, example in enumerate(tfds.as_numpy(dataset)):
            name = example.get("file_name", b"")
            name = name.decode() if isinstance(name, bytes) else str(name)
            name = name or f"{cfg.tfds_name}/{split}/{index}"
            image, mask = example["image"], example["segmentation_mask"][..., 0]
            where = f"{cfg.tfds_name} example {name}"
            if mask.shape != image.shape[:2]:
                raise UserError(
                    f"{where}: mask size {mask.shape} differs from image size "
                    f"{image.shape[:2]}. Re-prepare the dataset."
                )
            mask = binary_mask(mask, where)
            # Resize now, one image at a time: native Kvasir-SEG images are large.
            samples.append(resize(Sample(name, image, mask, np.ones_like(mask)), size))
        splits[split] = samples
    return splits


# ---------------------------------------------------------------- preparing


def resize(sample: Sample, size: int) -> Sample:
    """Resize to size x size: the image bilinearly, masks by nearest neighbour (binary)."""

    def to(array: np.ndarray, method: Image.Resampling) -> np.ndarray:
        return np.asarray(Image.fromarray(array).resize((size, size), method))

    return Sample(
        sample.name,
        to(sample.image, Image.Resampling.BILINEAR),
        to(sample.mask, Image.Resampling.NEAREST),
        to(sample.fov, Image.Resampling.NEAREST),
    )


def carve_validation(
    train: list[Sample], fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Hold out round(fraction * n) (at least 1) training images, chosen with `seed`."""
    if len(train) < 2:
        raise UserError(
            f"the training split has {len(train)} image(s); at least 2 are needed to "
            "hold one out for validation. Add images or a val/ split."
        )
    count = min(max(1, round(fraction * len(train))), len(train) - 1)
    order = np.random.default_rng(seed).permutation(len(train))
    held = set(order[:count].tolist())
    kept = [s for i, s in enumerate(train) if i not in held]
    return kept, [s for i, s in enumerate(train) if i in held]


def _base_dataset(samples: list[Sample]) -> tf.data.Dataset:
    """Unbatched (uint8 image, uint8 target) pairs; sizes may differ per image."""
    signature = (
        tf.TensorSpec((None, None, 3), tf.uint8),
        tf.TensorSpec((None, None, 2), tf.uint8),
    )
    pairs = tf.data.Dataset.from_generator(
        lambda: ((s.image, s.target()) for s in samples), output_signature=signature
    )
    # A known length lets Keras end evaluation without an "ran out of data" warning.
    return pairs.apply(tf.data.experimental.assert_cardinality(len(samples)))


def _to_float(image: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(image, tf.float32) / 255.0, tf.cast(target, tf.float32)


def pad_to_multiple(
    image: tf.Tensor, target: tf.Tensor, multiple: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Zero-pad bottom/right to a multiple of `multiple`; padding has FOV 0, so it never counts."""
    shape = tf.shape(image)
    pad_h = (-shape[0]) % multiple
    pad_w = (-shape[1]) % multiple
    paddings = [[0, pad_h], [0, pad_w], [0, 0]]
    return tf.pad(image, paddings), tf.pad(target, paddings)


def training_pipeline(samples: list[Sample], cfg: SegmentationConfig) -> tf.data.Dataset:
    """Random augmented crops, batched, forever."""
    crops = _base_dataset(samples).cache()
    crops = crops.shuffle(len(samples), seed=cfg.seed, reshuffle_each_iteration=True)
    crops = crops.repeat()
    # One stateless seed pair per example, itself drawn from cfg.seed: reproducible.
    seeds = tf.data.Dataset.random(seed=cfg.seed).batch(2)
    crops = tf.data.Dataset.zip((crops, seeds))
    # Crop and move pixels while still 8-bit, then convert only the crop: the same
    # values as converting first, at a fraction of the work (bench/input_pipeline.py).
    crops = crops.map(
        lambda pair, seed: _to_float(
            *training_example(*pair, seed, crop_size=cfg.crop_size, max_shift=cfg.max_shift)
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return crops.batch(cfg.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def evaluation_pipeline(samples: list[Sample], cfg: SegmentationConfig) -> tf.data.Dataset:
    """Whole images padded to a multiple of 2**depth, one pass, `eval_batch_size` per batch."""
    multiple = 2**cfg.depth
    images = _base_dataset(samples).cache().map(_to_float)
    images = images.map(lambda x, y: pad_to_multiple(x, y, multiple))
    # Images of different sizes pad further to the largest in the batch (FOV 0 again).
    return images.padded_batch(cfg.eval_batch_size).prefetch(tf.data.AUTOTUNE)


def crops_per_epoch(samples: list[Sample], cfg: SegmentationConfig) -> int:
    """Crops in one epoch: enough to tile every image once, or steps_per_epoch batches.

    Crops are drawn at random forever, so "one pass" has no natural size; the trainer
    caps an epoch at train_examples // batch_size steps, which must not undercut
    cfg.steps_per_epoch on a set of only 20 images.
    """
    tiles = sum(
        -(-s.mask.shape[0] // cfg.crop_size) * -(-s.mask.shape[1] // cfg.crop_size) for s in samples
    )
    return max(tiles, (cfg.steps_per_epoch or 0) * cfg.batch_size)


def foreground_fraction(samples: list[Sample]) -> float:
    inside = sum(int(s.fov.sum()) for s in samples)
    return sum(int((s.mask * s.fov).sum()) for s in samples) / max(inside, 1)


def load_data(cfg: SegmentationConfig) -> DataBundle:
    """Read the data named by cfg (a folder, or TFDS when cfg.data is unset)."""
    if cfg.data is None:
        splits = read_tfds(cfg)
        source = f"TFDS {cfg.tfds_name}"
    else:
        root = existing_path(cfg.data, "medical segmentation data folder")
        splits = read_folder(root)
        if cfg.image_size is not None:
            splits = {
                k: None if v is None else [resize(s, cfg.image_size) for s in v]
                for k, v in splits.items()
            }
        source = str(root)
    train, val, test = splits["train"], splits["val"], splits["test"]
    val_note = ""
    if not val:
        train, val = carve_validation(train, cfg.val_fraction, cfg.seed)
        val_note = " (val held out from train)"
    info = {
        "channels": 3,
        "train_images": len(train),
        "val_images": len(val),
        "test_images": len(test) if test else 0,
        "has_fov": any(not s.fov.all() for s in train),
        "foreground_fraction": foreground_fraction(train),
        "test_names": [s.name for s in test] if test else [],
    }
    counts = f"{len(train)} train, {len(val)} val{val_note}, {info['test_images']} test"
    return DataBundle(
        train=training_pipeline(train, cfg),
        make_train=lambda: training_pipeline(train, cfg),
        val=evaluation_pipeline(val, cfg),
        test=evaluation_pipeline(test, cfg) if test else None,
        train_examples=crops_per_epoch(train, cfg),
        description=f"{source}: {counts} images; training on {cfg.crop_size}x{cfg.crop_size} crops",
        info=info,
    )
