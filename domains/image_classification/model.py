"""Image classifiers: a small ResNet trained from scratch, or a pretrained backbone.

The scratch network follows the fast CIFAR-10 ResNets (Page's "ResNet-9", the model of the
super-convergence experiments): a stem convolution, then per stage a 3x3 convolution with
batch norm, ReLU and 2x2 max pooling that doubles the width, followed by residual blocks at
that width, and finally global max pooling and a dense classifier. Pooling early keeps the
cost low enough for a laptop CPU; `base_filters` (width) and `blocks_per_stage` (depth) scale
it up on a GPU.

The pretrained variant puts a Keras Applications backbone (ImageNet weights, BN layers kept
in inference mode) under a new head. `backbone_lr_scale` scales the gradients that reach
the backbone: with SGD-family optimizers that is the same as a lower learning rate for the
backbone than for the head; 0 freezes it.
"""

from __future__ import annotations

import keras

from common.data import network_available
from common.errors import UserError

# name -> (constructor, whether it expects pixels in [-1, 1]; otherwise raw [0, 255]).
# Only backbones whose preprocessing is a plain rescaling, so saved models need no Lambda.
BACKBONES = {
    "mobilenet_v2": (keras.applications.MobileNetV2, True),
    "resnet50_v2": (keras.applications.ResNet50V2, True),
    "efficientnet_b0": (keras.applications.EfficientNetB0, False),  # rescales inside
}


@keras.saving.register_keras_serializable(package="image_classification")
class GradientScale(keras.layers.Layer):
    """Identity on the forward pass; multiplies the gradient by `scale` on the way back.

    Placed between a backbone and its head, it gives the backbone's weights `scale` times
    the head's gradient, i.e. a `scale` times lower learning rate under SGD.
    """

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= scale <= 1:
            raise ValueError(f"scale must be in [0, 1]. Received: scale={scale!r}")
        self.scale = scale

    def call(self, inputs):
        scaled = inputs * self.scale
        return scaled + keras.ops.stop_gradient(inputs - scaled)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def conv_bn_relu(x, filters: int, name: str):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def residual_block(x, filters: int, name: str):
    shortcut = x
    x = conv_bn_relu(x, filters, f"{name}_a")
    x = conv_bn_relu(x, filters, f"{name}_b")
    return keras.layers.Add(name=f"{name}_add")([shortcut, x])


def build_resnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    base_filters: int,
    blocks_per_stage: int,
    num_stages: int = 3,
    dropout: float = 0.0,
    seed: int = 0,
) -> keras.Model:
    """The small ResNet; inputs are float pixels in [0, 255]."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inputs)
    x = conv_bn_relu(x, base_filters, "stem")
    side = min(input_shape[:2])
    for stage in range(num_stages):
        filters = base_filters * 2 ** (stage + 1)
        x = conv_bn_relu(x, filters, f"stage{stage + 1}")
        if side >= 2:  # small inputs stop shrinking at 1x1
            x = keras.layers.MaxPooling2D(2, name=f"stage{stage + 1}_pool")(x)
            side //= 2
        for block in range(blocks_per_stage):
            x = residual_block(x, filters, f"stage{stage + 1}_block{block + 1}")
    x = keras.layers.GlobalMaxPooling2D(name="pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="small_resnet")


def build_pretrained(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    backbone: str,
    backbone_input_size: int,
    backbone_lr_scale: float,
    dropout: float = 0.2,
    seed: int = 0,
) -> keras.Model:
    """A new dense head on an ImageNet-pretrained Keras Applications backbone."""
    constructor, wants_unit_range = BACKBONES[backbone]
    if input_shape[-1] not in (1, 3):
        raise UserError(
            f"--pretrained needs RGB or grey images; the data has {input_shape[-1]} "
            "channels. Train from scratch (drop --pretrained) or convert the images to RGB."
        )
    keras.utils.set_random_seed(seed)
    size = (backbone_input_size, backbone_input_size, 3)
    try:
        base = constructor(include_top=False, weights="imagenet", input_shape=size)
    except Exception as error:  # download failures come as several types
        reason = "no network" if not network_available() else type(error).__name__
        raise UserError(
            f"could not download the ImageNet weights of backbone {backbone!r} "
            f"({reason}). Train from scratch without --pretrained, or copy the weights "
            "file into ~/.keras/models (or $KERAS_HOME/models) first."
        ) from None
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    if input_shape[-1] == 1:
        x = keras.layers.Concatenate(name="grey_to_rgb")([x, x, x])
    x = keras.layers.Resizing(*size[:2], name="resize")(x)
    if wants_unit_range:
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(x)
    if backbone_lr_scale == 0:
        base.trainable = False
    x = base(x, training=False)  # keep BN statistics from ImageNet while fine-tuning
    x = GradientScale(backbone_lr_scale, name="backbone_lr_scale")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"pretrained_{backbone}")


def build_model(cfg, bundle) -> keras.Model:
    """The domain's model for `cfg`, shaped by the data in `bundle.info`."""
    input_shape = tuple(bundle.info["image_shape"])
    num_classes = len(bundle.info["class_names"])
    if cfg.pretrained:
        return build_pretrained(
            input_shape,
            num_classes,
            backbone=cfg.backbone,
            backbone_input_size=cfg.backbone_input_size,
            backbone_lr_scale=cfg.backbone_lr_scale,
            dropout=cfg.dropout,
            seed=cfg.seed,
        )
    return build_resnet(
        input_shape,
        num_classes,
        base_filters=cfg.base_filters,
        blocks_per_stage=cfg.blocks_per_stage,
        dropout=cfg.dropout,
        seed=cfg.seed,
    )
