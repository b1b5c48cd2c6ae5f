"""The U-Net: an encoder-decoder with skip connections and batch normalisation.

Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015, with padded convolutions (output size = input size) and
batch norm after every convolution. The input size is free (None x None), so the same
model trains on crops and predicts whole images whose sides are multiples of 2**depth.
"""

from __future__ import annotations

import keras
from keras import layers

from domains.medical_segmentation.config import SegmentationConfig


def conv_block(x, filters: int, name: str, momentum: float = 0.99):
    """Two 3x3 convolutions, each followed by batch norm and ReLU."""
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def build_unet(
    *,
    channels: int = 3,
    base_filters: int = 16,
    depth: int = 4,
    dropout: float = 0.0,
    batch_norm_momentum: float = 0.99,
) -> keras.Model:
    """A U-Net with `depth` down-samplings; outputs a (H, W, 1) foreground probability."""
    inputs = keras.Input((None, None, channels), name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = conv_block(x, base_filters * 2**level, f"down{level}", batch_norm_momentum)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    if dropout:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)
    x = conv_block(x, base_filters * 2**depth, "bottleneck", batch_norm_momentum)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, name=f"up{level}_transpose")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
        x = conv_block(x, filters, f"up{level}", batch_norm_momentum)
    # float32 output keeps the loss stable under mixed precision.
    outputs = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="mask")(x)
    return keras.Model(inputs, outputs, name=f"unet_f{base_filters}_d{depth}")


def build_model(cfg: SegmentationConfig, bundle) -> keras.Model:
    channels = bundle.info.get("channels", 3) if bundle is not None else 3
    return build_unet(
        channels=channels,
        base_filters=cfg.base_filters,
        depth=cfg.depth,
        dropout=cfg.dropout,
        batch_norm_momentum=cfg.batch_norm_momentum,
    )
