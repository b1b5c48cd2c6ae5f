"""Standard CIFAR augmentation in tf.data: pad-and-crop, horizontal flip and cutout.

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


def cut_out(image: tf.Tensor, seed: tf.Tensor, *, size: int):
    """Fill a `size` x `size` square at a random centre with mid-grey (DeVries & Taylor 2017).

    The centre may lie anywhere in the image, so the square is sometimes partly outside
    it, as in the paper. Mid-grey is what the model's rescaling maps to 0, the paper's
    fill of zero after normalisation.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    centre_row = tf.random.stateless_uniform((), seed, 0, height, dtype=tf.int32)
    centre_col = tf.random.stateless_uniform((), seed + 1, 0, width, dtype=tf.int32)
    top, left = centre_row - size // 2, centre_col - size // 2
    rows = tf.range(height)[:, None]
    cols = tf.range(width)[None, :]
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    grey = tf.cast(128, image.dtype)
    return tf.where(inside[:, :, None], grey, image)


def augment_dataset(
    dataset: tf.data.Dataset, *, seed: int, padding: int = 4, flip: bool = True, cutout: int = 0
) -> tf.data.Dataset:
    """Augment an unbatched dataset of (image, label) pairs; labels are left untouched.

    The seed stream is drawn afresh each time `.repeat()` starts a new epoch, so every
    epoch sees new crops and flips, and the same `seed` gives the same sequence of epochs.
    Cutout draws a third seed per image only when it is on, so runs without it see the
    same crops and flips as before it existed.
    """
    seeds_per_image = 3 if cutout else 2
    random_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(
        2 * seeds_per_image, drop_remainder=True
    )

    def apply(pair, seeds):
        image, label = pair
        seeds = tf.reshape(seeds, (seeds_per_image, 2))
        image = pad_crop_flip(image, seeds[:2], padding=padding, flip=flip)
        if cutout:
            image = cut_out(image, seeds[2], size=cutout)
        return image, label

    return tf.data.Dataset.zip((dataset, random_seeds)).map(
        apply, num_parallel_calls=tf.data.AUTOTUNE
    )
