"""Test-time flip averaging: score a model on each image and its mirror images.

A model trained on randomly flipped images has learnt both orientations, so the mean of
its outputs over the flips is a cheap ensemble (airbench and most CIFAR recipes use the
horizontal one). The wrapper runs the trained model once per flip; an output with the
same spatial axes as the input (a segmentation map) is flipped back before averaging,
a per-image output (class logits) is averaged as it is. The trained model is unchanged
and is what the run saves; the flip-averaged scores are extra summary keys.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

FLIP_PREFIX = "flip_"


@keras.saving.register_keras_serializable(package="lrsuite")
class FlipAveraged(keras.layers.Layer):
    """mean over `flips` of unflip(model(flip(x))); `()` in `flips` is the image itself."""

    def __init__(self, model: keras.Model, flips: tuple[tuple[int, ...], ...], **kwargs):
        super().__init__(**kwargs)
        if not flips:
            raise ValueError("flips must name at least one set of axes; () is the identity.")
        self.model = model
        self.flips = tuple(tuple(axes) for axes in flips)

    def call(self, images):
        outputs = []
        for axes in self.flips:
            flipped = ops.flip(images, axis=axes) if axes else images
            output = self.model(flipped, training=False)
            spatial = len(output.shape) == len(images.shape)
            outputs.append(ops.flip(output, axis=axes) if axes and spatial else output)
        return ops.mean(ops.stack(outputs), axis=0)


def flip_averaged_model(model: keras.Model, flips) -> keras.Model:
    """A model whose output is `model`'s averaged over the identity and `flips`."""
    images = keras.Input(model.input_shape[1:], dtype=model.inputs[0].dtype)
    averaged = FlipAveraged(model, ((), *flips), name="flip_averaged")(images)
    return keras.Model(images, averaged, name=f"{model.name}_flip_averaged")


def flip_averaged_scores(model, flips, loss, metrics, splits: dict) -> dict[str, float]:
    """{"<split>_flip_<metric>": value} for every named split that is not None.

    Scored by hand rather than by compiling the wrapper: a compiled model nested in
    another reports its own (never updated) metrics under the same names, so
    `evaluate` on the wrapper would read zeros. The loss is averaged over examples as
    `evaluate` does, without the model's regularisation terms.
    """
    averaged = flip_averaged_model(model, flips)
    on_tensorflow = keras.backend.backend() == "tensorflow"
    if on_tensorflow:
        forward = tf.function(lambda images: averaged(images, training=False),
                              reduce_retracing=True)
    else:  # tf.function cannot trace another backend's ops, which take NumPy
        forward = averaged.predict_on_batch
    scores = {}
    for split, dataset in splits.items():
        if dataset is None:
            continue
        loss_mean = keras.metrics.Mean()
        for metric in metrics:
            metric.reset_state()
        for images, targets in dataset:
            if not on_tensorflow:
                images, targets = np.asarray(images), np.asarray(targets)
            outputs = forward(images)
            loss_mean.update_state(loss(targets, outputs), sample_weight=ops.shape(targets)[0])
            for metric in metrics:
                metric.update_state(targets, outputs)
        results = {"loss": loss_mean.result(), **{m.name: m.result() for m in metrics}}
        scores.update({f"{split}_{FLIP_PREFIX}{k}": float(v) for k, v in results.items()})
    return scores
