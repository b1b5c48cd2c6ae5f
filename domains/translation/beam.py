"""Beam search decoding with the GNMT length penalty (Wu et al. 2016).

Each step expands every live hypothesis by every token and keeps the `beam_size` best
expansions per sentence by cumulative log-probability. Kept expansions that end in
[END] leave the beam as finished, scored by log-probability / ((5 + length) / 6)^alpha;
the others stay live. A sentence is done when it has no live hypothesis left or its
best finished score cannot be beaten by any live one; decoding stops when every
sentence is done or the translation reaches `max_length` tokens, where a live
hypothesis is cut and competes on the same normalised score. With `beam_size=1` this
is greedy decoding.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
from keras import ops

from domains.translation.tokenizer import END_ID, START_ID


def gnmt_length_penalty(length, alpha: float):
    """((5 + length) / 6)^alpha: the divisor of a hypothesis's log-probability."""
    return ((5.0 + length) / 6.0) ** alpha


def beam_decode(
    model: keras.Model,
    source_ids,
    max_length: int,
    beam_size: int,
    length_penalty: float = 0.6,
) -> np.ndarray:
    """Translate a padded batch of source ids; returns ids after [START], 0-padded.

    Args:
        model: a model from `build_transformer` (it holds `encoder`, `decoder`, `logits`).
        source_ids: int array (batch, S), 0 for padding.
        max_length: target length limit including [START] (max_target_length).
        beam_size: hypotheses kept per sentence (1: greedy).
        length_penalty: alpha of the GNMT length penalty (0: raw log-probability).

    Returns:
        int array (batch, <= max_length - 1): each row ends with [END] unless cut.
    """
    if beam_size < 1 or length_penalty < 0:
        raise ValueError(
            "beam_decode needs beam_size >= 1 and length_penalty >= 0. Received: "
            f"beam_size={beam_size!r}, length_penalty={length_penalty!r}"
        )
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    project = model.get_layer("logits")
    source_ids = ops.convert_to_tensor(source_ids, dtype="int32")
    memory = encoder(source_ids, training=False)
    batch = int(ops.shape(source_ids)[0])
    # Row b * beam_size + k of the decoder batch is hypothesis k of sentence b.
    beam_memory = ops.repeat(memory, beam_size, axis=0)
    beam_source_ids = ops.repeat(source_ids, beam_size, axis=0)
    sentences = np.arange(batch)[:, None]
    longest = max_length - 1  # generated tokens, [END] included
    # Any live hypothesis's final score is at most its score now over this divisor:
    # log-probabilities only fall, and the penalty only grows with length.
    largest_penalty = gnmt_length_penalty(longest, length_penalty)

    tokens = np.full((batch, beam_size, 1), START_ID, dtype="int32")
    # One live hypothesis to start with, so that the first step keeps distinct tokens.
    scores = np.full((batch, beam_size), -np.inf)
    scores[:, 0] = 0.0
    # Per sentence, the best finished hypothesis so far: normalised score, ids, length.
    best_score = np.full(batch, -np.inf)
    best_ids = np.zeros((batch, longest), dtype="int32")
    best_length = np.zeros(batch, dtype="int64")
    done = np.zeros(batch, dtype=bool)

    for length in range(1, longest + 1):
        with warnings.catch_warnings():
            # The first step attends over one token: Keras warns, rightly harmless.
            warnings.filterwarnings("ignore", message="You are using a softmax over axis")
            prefixes = ops.convert_to_tensor(tokens.reshape(batch * beam_size, -1))
            states = decoder([prefixes, beam_memory, beam_source_ids], training=False)
        log_probs = ops.convert_to_numpy(
            ops.log_softmax(project(states[:, -1, :]), axis=-1)
        ).reshape(batch, beam_size, -1)
        vocab = log_probs.shape[-1]
        expansions = (scores[:, :, None] + log_probs).reshape(batch, -1)
        # top_k breaks ties towards the lower index, as greedy's argmax does.
        kept_scores, kept = (
            ops.convert_to_numpy(part) for part in ops.top_k(expansions, beam_size)
        )
        parents, next_ids = kept // vocab, (kept % vocab).astype("int32")
        tokens = np.concatenate(
            [tokens[sentences, parents], next_ids[:, :, None]], axis=-1
        )
        real = np.isfinite(kept_scores) & ~done[:, None]
        ended = real & (next_ids == END_ID)

        normalised = np.where(
            ended, kept_scores / gnmt_length_penalty(length, length_penalty), -np.inf
        )
        best_ended = normalised.argmax(axis=1)
        improved = normalised[np.arange(batch), best_ended] > best_score
        for sentence in np.flatnonzero(improved):
            best_score[sentence] = normalised[sentence, best_ended[sentence]]
            best_ids[sentence] = 0
            best_ids[sentence, :length] = tokens[sentence, best_ended[sentence], 1:]
            best_length[sentence] = length

        scores = np.where(real & ~ended, kept_scores, -np.inf)
        best_live = scores.max(axis=1)
        done |= ~np.isfinite(best_live) | (best_score >= best_live / largest_penalty)
        if done.all():
            break
    else:
        # At max_length the live hypotheses are cut; one that scores higher on the same
        # normalised scale wins over the finished ones (or stands in for none).
        cut_scores = scores.max(axis=1) / largest_penalty
        for sentence in np.flatnonzero(~done & (cut_scores > best_score)):
            best_ids[sentence] = tokens[sentence, scores[sentence].argmax(), 1:]
            best_length[sentence] = longest
    return best_ids[:, : best_length.max()]
