"""Standard CIFAR augmentation in tf.data: pad-and-crop and horizontal flip.

Applied per example to (image, label) pairs, so a label always travels with its image.
Random ops take their seeds from the dataset's seed (`tf.data` stateless random ops keyed by
`Dataset.random`), which keeps runs with the same `--seed` identical.
"""

from __future__ import annotations

import tensorflow as tf


def pad_crop_flip(image: tf.Tensor, seeds: tf.Tensor, *, padding: int, flip: bool):
    """Reflect-pad by `padding`, crop back to the original size at a random place, flip.

    Args:
        image: one (height, width, channels) image, any dtype.
        seeds: int64 tensor of shape (2, 2): one stateless seed per random op.
        padding: pixels added on every side before cropping (0: no crop).
        flip: whether to flip left-right with probability 1/2.

    Returns:
        An image with the same shape and dtype.
    """
    shape = tf.shape(image)
    if padding:
        padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]], mode="REFLECT")
        image = tf.image.stateless_random_crop(padded, shape, seed=seeds[0])
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
    return image


def augment_dataset(
    dataset: tf.data.Dataset, *, seed: int, padding: int = 4, flip: bool = True
) -> tf.data.Dataset:
    """Augment an unbatched dataset of (image, label) pairs; labels are left untouched.

    The seed stream is drawn afresh each time `.repeat()` starts a new epoch, so every
    epoch sees new crops and flips, and the same `seed` gives the same sequence of epochs.
    """
    random_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(
        4, drop_remainder=True
    )

    def apply(pair, seeds):
        image, label = pair
        seeds = tf.reshape(seeds, (2, 2))
        return pad_crop_flip(image, seeds, padding=padding, flip=flip), label

    return tf.data.Dataset.zip((dataset, random_seeds)).map(
        apply, num_parallel_calls=tf.data.AUTOTUNE
    )
