"""Joint augmentation: every geometric change is applied to image and mask as one tensor.

Image (H, W, C) and target (H, W, 2: mask, field of view) are concatenated along the
channel axis before any flip, rotation, shift or crop, and split again afterwards, so
the two cannot drift apart. The transforms only move pixels (no interpolation), so
masks stay exactly binary. All randomness is stateless and driven by an explicit seed,
which makes a run reproducible from `cfg.seed`.
"""

from __future__ import annotations

import tensorflow as tf


def pad_at_least(pair: tf.Tensor, size: int) -> tf.Tensor:
    """Zero-pad bottom/right so both sides are >= size (pad has fov 0: ignored)."""
    shape = tf.shape(pair)
    pad_h = tf.maximum(size - shape[0], 0)
    pad_w = tf.maximum(size - shape[1], 0)
    return tf.pad(pair, [[0, pad_h], [0, pad_w], [0, 0]])


def random_crop(pair: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
    """A size x size crop at a random position (images smaller than that are padded)."""
    channels = pair.shape[-1]
    pair = pad_at_least(pair, size)
    return tf.image.stateless_random_crop(pair, [size, size, channels], seed=seed)


def flip_rotate_shift(pair: tf.Tensor, seed: tf.Tensor, max_shift: int) -> tf.Tensor:
    """Random flips, a rotation by a multiple of 90 degrees, and a shift of <= max_shift."""
    seeds = tf.random.experimental.stateless_split(seed, num=4)
    pair = tf.image.stateless_random_flip_left_right(pair, seed=seeds[0])
    pair = tf.image.stateless_random_flip_up_down(pair, seed=seeds[1])
    turns = tf.random.stateless_uniform([], seeds[2], minval=0, maxval=4, dtype=tf.int32)
    pair = tf.image.rot90(pair, k=turns)
    if max_shift > 0:
        # Pad with zeros and crop back to the old size at a random offset.
        padded = tf.pad(pair, [[max_shift, max_shift], [max_shift, max_shift], [0, 0]])
        pair = tf.image.stateless_random_crop(padded, tf.shape(pair), seed=seeds[3])
    return pair


def augment_pair(
    image: tf.Tensor, target: tf.Tensor, seed: tf.Tensor, *, max_shift: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Apply the same flips, rotation and shift to an image and its target.

    Args:
        image: (H, W, C) float image.
        target: (H, W, K) float target (mask, field of view), same H and W.
        seed: shape-(2,) integer seed for the stateless random ops.
        max_shift: largest shift in pixels (0: none).

    Returns:
        (image, target) transformed together; shapes are swapped when H != W and the
        rotation is odd.
    """
    channels = image.shape[-1]
    pair = tf.concat([image, tf.cast(target, image.dtype)], axis=-1)
    pair = flip_rotate_shift(pair, seed, max_shift)
    return pair[..., :channels], pair[..., channels:]


def training_example(
    image: tf.Tensor, target: tf.Tensor, seed: tf.Tensor, *, crop_size: int, max_shift: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """A random crop of one image/target pair, then joint flips, rotation and shift."""
    crop_seed, augment_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    channels = image.shape[-1]
    pair = tf.concat([image, tf.cast(target, image.dtype)], axis=-1)
    pair = random_crop(pair, crop_size, crop_seed)
    image, target = pair[..., :channels], pair[..., channels:]
    image, target = augment_pair(image, target, augment_seed, max_shift=max_shift)
    image.set_shape([crop_size, crop_size, channels])
    target.set_shape([crop_size, crop_size, pair.shape[-1] - channels])
    return image, target
