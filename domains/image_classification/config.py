"""Image classification configuration: defaults that train CIFAR-10-sized data on a CPU."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.config import TrainConfig, help_field

BACKBONE_NAMES = ("mobilenet_v2", "resnet50_v2", "efficientnet_b0")


@dataclass(frozen=True, kw_only=True)
class ImageClassificationConfig(TrainConfig):
    """Small ResNet on CIFAR-10 (TFDS) or a local .npz / class-folder dataset."""

    domain: str = "image_classification"
    # Shared fields with defaults chosen for this task (see README for the measured run).
    epochs: int = help_field(36, help="Number of epochs.")
    batch_size: int = help_field(128, help="Examples per training step.")
    learning_rate: float | str = help_field(
        0.1, help="Peak learning rate, or 'auto' to run the LR range test first."
    )
    optimizer: str = help_field("nesterov", help="Optimizer (see the shared list).")
    weight_decay: float = help_field(5e-4, help="Decoupled weight decay.")
    schedule: str = help_field(
        "one_cycle", help="Learning-rate schedule; `lrsuite schedules` lists them."
    )

    # Data.
    dataset: str = help_field("cifar10", help="tensorflow-datasets name used when --data is unset.")
    val_fraction: float = help_field(
        0.1,
        help="Share of train held out for validation when the data has no val split.",
    )
    augment: bool = help_field(
        True, help="Random crop with padding and horizontal flip on training images."
    )
    crop_padding: int = help_field(
        4, help="Pixels of reflect padding before the random crop (0: no crop)."
    )
    horizontal_flip: bool = help_field(
        True, help="Flip training images left-right at random (off for digits, text)."
    )
    cutout: int = help_field(
        12,
        help="Side in pixels of a square set to mid-grey at a random place in every "
        "training image (cutout, DeVries & Taylor 2017; at most half the image side; 0: off).",
    )

    # Model.
    base_filters: int = help_field(
        16, help="Width: filters of the stem; each of the 3 stages doubles it."
    )
    blocks_per_stage: int = help_field(
        1, help="Depth: residual blocks (2 convolutions each) after each stage."
    )
    dropout: float = help_field(0.0, help="Dropout before the classifier.")
    label_smoothing: float = help_field(0.2, help="Label smoothing of the loss.")
    pretrained: bool = help_field(
        False, help="Fine-tune an ImageNet-pretrained Keras Applications backbone."
    )
    backbone: str = help_field(
        "mobilenet_v2",
        help=f"Backbone for --pretrained: one of {', '.join(BACKBONE_NAMES)}.",
    )
    backbone_input_size: int = help_field(
        96, help="Side the images are resized to for the pretrained backbone."
    )
    backbone_lr_scale: float = help_field(
        0.1,
        help="Backbone gradient multiplier under --pretrained (a lower backbone rate "
        "with SGD-family optimizers; 0 freezes the backbone).",
    )

    test_time_flip: bool = help_field(
        True,
        help="Also score validation and test on the mean logits of each image and its "
        "mirror (summary keys val_flip_*, test_flip_*); needs --horizontal-flip.",
    )

    # Report.
    misclassified_examples: int = help_field(
        36, help="Misclassified test images shown in the end-of-run grid (0: none)."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.val_fraction < 1:
            raise ValueError(
                f"val_fraction must be in [0, 1). Received: val_fraction={self.val_fraction!r}"
            )
        for name in ("dropout", "label_smoothing"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1). Received: {name}={value!r}")
        for name, low in (
            ("base_filters", 1),
            ("blocks_per_stage", 0),
            ("crop_padding", 0),
            ("cutout", 0),
            ("misclassified_examples", 0),
            ("backbone_input_size", 32),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}. Received: {name}={value!r}")
        if self.backbone not in BACKBONE_NAMES:
            raise ValueError(
                f"Unknown backbone. Expected one of: {', '.join(BACKBONE_NAMES)}. "
                f"Received: backbone={self.backbone!r}"
            )
        if not 0 <= self.backbone_lr_scale <= 1:
            raise ValueError(
                "backbone_lr_scale must be in [0, 1]. "
                f"Received: backbone_lr_scale={self.backbone_lr_scale!r}"
            )

    @classmethod
    def smoke(cls, **overrides: Any) -> ImageClassificationConfig:
        """A tiny preset for tests: a 4-filter net, a few steps of 8 images."""
        values: dict[str, Any] = {
            "epochs": 2,
            "batch_size": 8,
            "steps_per_epoch": 4,
            "learning_rate": 0.01,
            "optimizer": "adam",
            "weight_decay": 0.0,
            "schedule": "constant",
            "base_filters": 4,
            "blocks_per_stage": 1,
            "cutout": 0,  # a few steps on tiny images: regularisation only slows the check
            "label_smoothing": 0.0,
            "misclassified_examples": 4,
            "backbone_input_size": 32,
        }
        values.update(overrides)
        return cls(**values)
