"""Medical image segmentation: a U-Net on image/mask pairs (DRIVE vessels, Kvasir-SEG polyps).

Importing the package registers the TFDS builder `kvasir_seg`, so
`tfds.load("kvasir_seg")` works once the suite is imported.
"""

from common.domain import Domain
from domains.medical_segmentation import tfds_builder  # noqa: F401  (registers kvasir_seg)
from domains.medical_segmentation.config import SegmentationConfig
from domains.medical_segmentation.data import load_data
from domains.medical_segmentation.losses import segmentation_loss, segmentation_metrics
from domains.medical_segmentation.model import build_model
from domains.medical_segmentation.report import evaluate_extra
from domains.medical_segmentation.search_space import search_space

DATA_FORMAT = """\
PATH/train/ (and optional val/ or validation/, test/), each with images/ and
masks/ holding files of the same name (PNG, JPEG, TIFF...), plus an optional fov/. Masks and
fov are single-channel and binary (0/255 or 0/1) at their image's size; fov marks the pixels
that count in loss and metrics (default: all). Without val/, --val-fraction of train is held
out. Example: ../shared/data/medical_segmentation/drive (DRIVE) or .../dsb2018_nuclei."""

DOMAIN = Domain(
    name="medical_segmentation",
    config_cls=SegmentationConfig,
    load_data=load_data,
    build_model=build_model,
    loss=segmentation_loss,
    metrics=segmentation_metrics,
    objective="val_dice",
    direction="max",
    evaluate_extra=evaluate_extra,
    search_space=search_space,
    data_format=DATA_FORMAT,
)
