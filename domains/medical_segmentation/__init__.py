"""Medical image segmentation: which pixels of an image belong to the structure (vessels,
polyps, nuclei)?

Data: image/mask pairs, from TFDS (`kvasir_seg`, whose builder importing this package
registers) or a local folder (DRIVE retina vessels, DSB 2018 nuclei); see data.py. Model: a
U-Net (model.py). Loss and metrics (losses.py): Dice plus binary cross-entropy over the
field of view; Dice and IoU. A search optimises validation Dice.
"""

from common.domain import Domain
from domains.medical_segmentation import (
    demo,
    tfds_builder,  # noqa: F401  (registers kvasir_seg)
)
from domains.medical_segmentation.config import SegmentationConfig
from domains.medical_segmentation.data import load_data
from domains.medical_segmentation.losses import loss, metrics
from domains.medical_segmentation.model import build_model
from domains.medical_segmentation.report import evaluate_extra
from domains.medical_segmentation.search_space import search_space

DATA_FORMAT = """\
PATH/train/ (and optional val/ or validation/, test/), each with images/ and
masks/ holding files of the same name (PNG, JPEG, TIFF...), plus an optional fov/. Masks and
fov are single-channel and binary (0/255 or 0/1) at their image's size; fov marks the pixels
that count in loss and metrics (default: all). Without val/, --val-fraction of train is held
out. Example: ../shared/data/medical_segmentation/drive (DRIVE) or .../dsb2018_nuclei."""


def fold_problem(cfg) -> str:
    return ("its training pipeline yields random crops of the images, so a fold held out "
            "from it would not be whole validation images")


def describe_model(cfg: dict) -> str:
    return f"U-Net, base_filters={cfg['base_filters']}, depth={cfg['depth']}"


def test_time_flips(cfg) -> tuple[tuple[int, ...], ...]:
    """Left-right, up-down and both (axes of NHWC); training crops are flipped both ways."""
    return ((2,), (1,), (1, 2)) if cfg.test_time_flip else ()


DOMAIN = Domain(
    name="medical_segmentation",
    config_cls=SegmentationConfig,
    load_data=load_data,
    build_model=build_model,
    loss=loss,
    metrics=metrics,
    objective="val_dice",
    direction="max",
    evaluate_extra=evaluate_extra,
    search_space=search_space,
    data_format=DATA_FORMAT,
    write_demo_data=demo.write_demo_data,
    demo_overrides=demo.OVERRIDES,
    fold_problem=fold_problem,
    describe_model=describe_model,
    test_time_flips=test_time_flips,
)
