"""A convex toy task (linear regression) whose good learning-rate band is known.

For plain SGD on mean squared error with standardised features, the Hessian is about
2 * I, so steps are stable for rates below ~1 and slow below ~1e-3: the band in which
training is known to work is [1e-2, 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from common.config import TrainConfig
from common.domain import DataBundle, Domain

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


def load_data(cfg) -> DataBundle:
    rng = np.random.default_rng(cfg.seed)
    w = rng.normal(size=(cfg.features, 1)).astype("float32")

    def split(n):
        x = rng.normal(size=(n, cfg.features)).astype("float32")
        return x, x @ w + 0.1 * rng.normal(size=(n, 1)).astype("float32")

    (xt, yt), (xv, yv), (xs, ys) = split(cfg.examples), split(128), split(128)
    def make_train():
        return (tf.data.Dataset.from_tensor_slices((xt, yt)).shuffle(cfg.examples, seed=cfg.seed)
                .repeat().batch(cfg.batch_size, drop_remainder=True))

    train = make_train()
    return DataBundle(
        train=train,
        make_train=make_train,
        val=tf.data.Dataset.from_tensor_slices((xv, yv)).batch(64),
        test=tf.data.Dataset.from_tensor_slices((xs, ys)).batch(64),
        train_examples=cfg.examples,
        description=f"toy linear regression, {cfg.examples} examples",
    )


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
)
