"""A convex toy task (linear regression) whose good learning-rate band is known.

For plain SGD on mean squared error with standardised features, the Hessian is about
2 * I, so steps are stable for rates below ~1 and slow below ~1e-3: the band in which
training is known to work is [1e-2, 1).

Its local data (`--data`, and what `write_demo_data` writes) is an .npz of x_<split> and
y_<split> arrays for train, val and test; without `--data` it is generated in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.config import TrainConfig
from common.domain import DataBundle, Domain
from common.errors import UserError

KNOWN_GOOD_BAND = (1e-2, 1.0)


@dataclass(frozen=True, kw_only=True)
class ToyConfig(TrainConfig):
    domain: str = "toy"
    optimizer: str = "sgd"
    learning_rate: float | str = 0.1
    epochs: int = 3
    batch_size: int = 16
    examples: int = 512
    features: int = 8


SPLITS = ("train", "val", "test")


def generate(cfg, examples: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(cfg.seed)
    w = rng.normal(size=(cfg.features, 1)).astype("float32")
    arrays = {}
    for split, n in zip(SPLITS, (examples, 128, 128), strict=True):
        x = rng.normal(size=(n, cfg.features)).astype("float32")
        arrays[f"x_{split}"] = x
        arrays[f"y_{split}"] = x @ w + 0.1 * rng.normal(size=(n, 1)).astype("float32")
    return arrays


def read_npz(path: str, features: int) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            arrays = {k: data[k].astype("float32") for k in data.files}
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: not a readable .npz ({error}).") from None
    for split in SPLITS:
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is None or y is None or x.ndim != 2 or x.shape[1] != features or len(x) != len(y):
            raise UserError(f"{path}: needs x_{split} (n, {features}) and y_{split} (n, 1).")
    return arrays


def load_data(cfg) -> DataBundle:
    arrays = read_npz(cfg.data, cfg.features) if cfg.data else generate(cfg, cfg.examples)
    examples = len(arrays["x_train"])
    def make_train():
        return (tf.data.Dataset.from_tensor_slices((arrays["x_train"], arrays["y_train"]))
                .shuffle(examples, seed=cfg.seed).repeat()
                .batch(cfg.batch_size, drop_remainder=True))

    def one_pass(split):
        pairs = (arrays[f"x_{split}"], arrays[f"y_{split}"])
        return tf.data.Dataset.from_tensor_slices(pairs).batch(64)

    return DataBundle(
        train=make_train(),
        make_train=make_train,
        val=one_pass("val"),
        test=one_pass("test"),
        train_examples=examples,
        description=f"toy linear regression, {examples} examples",
    )


def write_demo_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "toy.npz"
    np.savez(path, **generate(ToyConfig(), 256))
    return path


def build_model(cfg, bundle):
    return keras.Sequential([keras.Input((cfg.features,)), keras.layers.Dense(1, name="linear")])


TOY = Domain(
    name="toy",
    config_cls=ToyConfig,
    load_data=load_data,
    build_model=build_model,
    loss=lambda cfg: keras.losses.MeanSquaredError(),
    metrics=lambda cfg, bundle=None: [keras.metrics.MeanAbsoluteError(name="mae")],
    objective="val_loss",
    direction="min",
    write_demo_data=write_demo_data,
    demo_overrides={"epochs": 2, "steps_per_epoch": 8},
    describe_model=lambda cfg: f"one Dense unit over {cfg['features']} features",
)
