"""Image classification: which of N classes does a small image show?

Data: CIFAR-10 through TFDS, or local data (an .npz of arrays, or one folder per class);
see data.py. Model: a small ResNet (model.py), or a pretrained Keras Applications
backbone with --pretrained. Loss and metrics (losses.py): cross-entropy from logits,
label smoothing optional; accuracy, and top-5 accuracy when there are many classes.
A search optimises validation accuracy.
"""

from __future__ import annotations

from common.domain import Domain
from domains.image_classification import demo
from domains.image_classification.config import ImageClassificationConfig
from domains.image_classification.data import load_data
from domains.image_classification.losses import SparseLabelSmoothingLoss, loss, metrics
from domains.image_classification.model import build_model
from domains.image_classification.report import evaluate_extra
from domains.image_classification.search_space import search_space


def fold_problem(cfg) -> str:
    if cfg.augment:
        return ("its training pipeline augments at random, which would freeze one draw "
                "into the folds (add --no-augment)")
    return ""


def test_time_flips(cfg) -> tuple[tuple[int, ...], ...]:
    """Left-right (the width axis of NHWC), when training flipped images that way."""
    if cfg.test_time_flip and cfg.augment and cfg.horizontal_flip:
        return ((2,),)
    return ()


def describe_model(cfg: dict) -> str:
    if cfg.get("pretrained"):
        return f"pretrained {cfg['backbone']} backbone"
    return f"small ResNet, base_filters={cfg['base_filters']}"


DOMAIN = Domain(
    name="image_classification",
    config_cls=ImageClassificationConfig,
    load_data=load_data,
    build_model=build_model,
    loss=loss,
    metrics=metrics,
    objective="val_accuracy",
    direction="max",
    evaluate_extra=evaluate_extra,
    search_space=search_space,
    write_demo_data=demo.write_demo_data,
    demo_overrides=demo.OVERRIDES,
    fold_problem=fold_problem,
    describe_model=describe_model,
    test_time_flips=test_time_flips,
)

__all__ = ["DOMAIN", "SparseLabelSmoothingLoss", "loss", "metrics"]
