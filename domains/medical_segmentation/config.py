"""Configuration of the medical segmentation domain: a U-Net on image/mask pairs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.config import TrainConfig, help_field

# Kvasir-SEG images range from 332x487 to 1920x1072: resize them when none is given.
TFDS_DEFAULT_IMAGE_SIZE = 256


@dataclass(frozen=True, kw_only=True)
class SegmentationConfig(TrainConfig):
    """A U-Net trained on random crops and evaluated on whole, padded images."""

    domain: str = "medical_segmentation"
    tfds_name: str = help_field(
        "kvasir_seg",
        help="TFDS dataset read when --data is unset (the suite's own builder).",
    )
    base_filters: int = help_field(
        16, help="Filters of the U-Net's first level; doubled at every level down."
    )
    depth: int = help_field(
        4, help="Number of 2x down-samplings in the U-Net (images pad to 2**depth)."
    )
    dropout: float = help_field(
        0.0, help="Dropout rate before the U-Net bottleneck's convolutions."
    )
    batch_norm_momentum: float = help_field(
        0.9,
        help="Momentum of the batch-norm moving statistics used at evaluation. "
        "Keras's 0.99 needs hundreds of steps to forget its initial values, so "
        "val Dice stays near 0 early and short tuner trials look alike.",
    )
    crop_size: int = help_field(128, help="Side of the square random crops used for training.")
    image_size: int | None = help_field(
        None,
        help="Resize every image to SIZE x SIZE before cropping (masks by nearest "
        "neighbour, so they stay binary). Unset: native size for --data, "
        f"{TFDS_DEFAULT_IMAGE_SIZE} for the TFDS Kvasir-SEG default.",
    )
    max_shift: int = help_field(8, help="Largest random shift in pixels applied to training crops.")
    val_fraction: float = help_field(
        0.1,
        help="Share of training images held out for validation when the data "
        "has no val/ split (DRIVE has none).",
    )
    test_time_flip: bool = help_field(
        True,
        help="Also score validation and test on the mean of the predictions for each "
        "image and its three mirror images, each flipped back (summary keys val_flip_*, "
        "test_flip_*). Training flips crops both ways, so all four are views it knows.",
    )
    eval_batch_size: int = help_field(2, help="Whole images per batch in validation and test.")
    overlay_count: int = help_field(
        4, help="Test images drawn with their true and predicted masks at the end."
    )
    epochs: int = help_field(12, help="Number of epochs.")
    batch_size: int = help_field(16, help="Training crops per step.")
    steps_per_epoch: int | None = help_field(
        50, help="Training steps per epoch (crops are random, so any number works)."
    )
    learning_rate: float | str = help_field(
        5e-3, help="Peak learning rate, or 'auto' to run the LR range test first."
    )
    optimizer: str = help_field("adam", help="Optimizer name.")
    schedule: str = help_field(
        "cosine", help="Learning-rate schedule; `lrsuite schedules` lists them."
    )
    warmup_epochs: float = help_field(
        1.0, help="Linear warmup length in epochs, for schedules that take one."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.depth <= 6:
            raise ValueError(f"depth must be in [1, 6]. Received: depth={self.depth!r}")
        if self.base_filters < 1:
            raise ValueError(
                f"base_filters must be >= 1. Received: base_filters={self.base_filters!r}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1). Received: dropout={self.dropout!r}")
        if not 0 <= self.batch_norm_momentum < 1:
            raise ValueError(
                "batch_norm_momentum must be in [0, 1). "
                f"Received: batch_norm_momentum={self.batch_norm_momentum!r}"
            )
        multiple = 2**self.depth
        if self.crop_size < multiple or self.crop_size % multiple:
            raise ValueError(
                f"crop_size must be a positive multiple of 2**depth={multiple}. "
                f"Received: crop_size={self.crop_size!r}"
            )
        if self.image_size is not None and self.image_size < multiple:
            raise ValueError(
                f"image_size must be >= 2**depth={multiple} or unset. "
                f"Received: image_size={self.image_size!r}"
            )
        if self.max_shift < 0:
            raise ValueError(f"max_shift must be >= 0. Received: max_shift={self.max_shift!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(
                f"val_fraction must be in (0, 1). Received: val_fraction={self.val_fraction!r}"
            )
        for name in ("eval_batch_size",):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1. Received: {name}={getattr(self, name)!r}")
        if self.overlay_count < 0:
            raise ValueError(
                f"overlay_count must be >= 0. Received: overlay_count={self.overlay_count!r}"
            )

    @classmethod
    def smoke(cls, **overrides: Any) -> SegmentationConfig:
        """A tiny U-Net on small crops: seconds per epoch on a CPU."""
        values: dict[str, Any] = {
            "epochs": 2,
            "batch_size": 4,
            "steps_per_epoch": 3,
            "base_filters": 4,
            "depth": 2,
            "crop_size": 32,
            "schedule": "constant",
            "warmup_epochs": 0.0,
            "max_shift": 4,
            "eval_batch_size": 2,
            "overlay_count": 2,
        }
        values.update(overrides)
        return cls(**values)
