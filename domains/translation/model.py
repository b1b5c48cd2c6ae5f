"""A small Transformer encoder-decoder ("Attention Is All You Need", post-norm).

Inputs are token ids, 0 for padding: `{"source_ids": (batch, S), "target_ids":
(batch, T)}`; the output is next-token logits (batch, T, target_vocab). Masks are
explicit, not carried by Keras masking: every attention ignores padded keys, and the
decoder's self-attention is also causal, so position t sees target tokens <= t only.
The model is two sub-models, `encoder` and `decoder`, and a `logits` projection, so
that greedy decoding encodes a sentence once, reruns only the decoder and projects only
the newest position onto the vocabulary.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from domains.translation.tokenizer import PAD_ID

PACKAGE = "translation"


# ## Build a model


@keras.saving.register_keras_serializable(package=PACKAGE)
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token embedding scaled by sqrt(dim) plus a learned position embedding."""

    def __init__(self, vocab_size: int, max_length: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.dim = dim
        self.tokens = keras.layers.Embedding(vocab_size, dim, name="tokens")
        self.positions = keras.layers.Embedding(max_length, dim, name="positions")

    def build(self, input_shape):
        self.tokens.build(input_shape)
        self.positions.build((None,))
        super().build(input_shape)

    def call(self, ids):
        positions = ops.arange(ops.shape(ids)[-1])
        scaled = self.tokens(ids) * ops.cast(math.sqrt(self.dim), self.compute_dtype)
        return scaled + self.positions(positions)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.dim)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "max_length": self.max_length,
            "dim": self.dim,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class KeyPaddingMask(keras.layers.Layer):
    """Token ids (batch, S) -> boolean mask (batch, 1, S): True where a key is real."""

    def call(self, ids):
        return ops.expand_dims(ops.not_equal(ids, PAD_ID), axis=1)



def _feed_forward(dim: int, ff_dim: int, name: str) -> keras.Sequential:
    return keras.Sequential(
        [keras.layers.Dense(ff_dim, activation="relu"), keras.layers.Dense(dim)],
        name=name,
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class EncoderBlock(keras.layers.Layer):
    """Self-attention over the source (padding masked), then a feed-forward block."""

    def __init__(self, dim: int, num_heads: int, ff_dim: int, dropout: float, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.ff_dim, self.dropout = dim, num_heads, ff_dim, dropout
        self.attention = keras.layers.MultiHeadAttention(
            num_heads, dim // num_heads, dropout=dropout, name="self_attention"
        )
        self.feed_forward = _feed_forward(dim, ff_dim, "feed_forward")
        self.norm_attention = keras.layers.LayerNormalization(name="norm_attention")
        self.norm_output = keras.layers.LayerNormalization(name="norm_output")
        self.drop = keras.layers.Dropout(dropout)

    def build(self, x_shape, key_mask_shape=None):
        self.attention.build(x_shape, x_shape)
        self.feed_forward.build(x_shape)
        self.norm_attention.build(x_shape)
        self.norm_output.build(x_shape)
        super().build(x_shape)

    def call(self, x, key_mask, training=None):
        attended = self.attention(x, x, attention_mask=key_mask, training=training)
        x = self.norm_attention(x + self.drop(attended, training=training))
        transformed = self.feed_forward(x, training=training)
        return self.norm_output(x + self.drop(transformed, training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "dim": self.dim,
            "num_heads": self.num_heads,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class DecoderBlock(keras.layers.Layer):
    """Causal self-attention, attention over the encoder output, feed-forward."""

    def __init__(self, dim: int, num_heads: int, ff_dim: int, dropout: float, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.ff_dim, self.dropout = dim, num_heads, ff_dim, dropout
        key_dim = dim // num_heads
        self.self_attention = keras.layers.MultiHeadAttention(
            num_heads, key_dim, dropout=dropout, name="self_attention"
        )
        self.cross_attention = keras.layers.MultiHeadAttention(
            num_heads, key_dim, dropout=dropout, name="cross_attention"
        )
        self.feed_forward = _feed_forward(dim, ff_dim, "feed_forward")
        self.norm_self = keras.layers.LayerNormalization(name="norm_self")
        self.norm_cross = keras.layers.LayerNormalization(name="norm_cross")
        self.norm_output = keras.layers.LayerNormalization(name="norm_output")
        self.drop = keras.layers.Dropout(dropout)

    def build(
        self, x_shape, memory_shape, target_key_mask_shape=None, source_key_mask_shape=None
    ):
        self.self_attention.build(x_shape, x_shape)
        self.cross_attention.build(x_shape, memory_shape)
        self.feed_forward.build(x_shape)
        for norm in (self.norm_self, self.norm_cross, self.norm_output):
            norm.build(x_shape)
        super().build(x_shape)

    def call(self, x, memory, target_key_mask, source_key_mask, training=None):
        # Causal AND padding: position t attends to real target tokens <= t only.
        attended = self.self_attention(
            x,
            x,
            attention_mask=target_key_mask,
            use_causal_mask=True,
            training=training,
        )
        x = self.norm_self(x + self.drop(attended, training=training))
        attended = self.cross_attention(
            x, memory, attention_mask=source_key_mask, training=training
        )
        x = self.norm_cross(x + self.drop(attended, training=training))
        transformed = self.feed_forward(x, training=training)
        return self.norm_output(x + self.drop(transformed, training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "dim": self.dim,
            "num_heads": self.num_heads,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout,
        }


def build_transformer(
    *,
    source_vocab_size: int,
    target_vocab_size: int,
    max_source_length: int,
    max_target_length: int,
    dim: int,
    num_heads: int,
    ff_dim: int,
    num_layers: int,
    dropout: float,
) -> keras.Model:
    """The full encoder-decoder.

    `get_layer("encoder")` maps source ids to memory; `get_layer("decoder")` maps
    (target ids, memory, source ids) to hidden states; `get_layer("logits")` projects
    those to next-token logits.
    """
    source_ids = keras.Input((None,), dtype="int32", name="source_ids")
    source_mask = KeyPaddingMask(name="source_key_mask")(source_ids)
    x = TokenAndPositionEmbedding(
        source_vocab_size, max_source_length, dim, name="source_embedding"
    )(source_ids)
    x = keras.layers.Dropout(dropout)(x)
    for index in range(num_layers):
        x = EncoderBlock(dim, num_heads, ff_dim, dropout, name=f"encoder_block_{index}")(
            x, source_mask
        )
    encoder = keras.Model(source_ids, x, name="encoder")

    target_ids = keras.Input((None,), dtype="int32", name="target_ids")
    memory = keras.Input((None, dim), name="memory")
    memory_source_ids = keras.Input((None,), dtype="int32", name="memory_source_ids")
    target_mask = KeyPaddingMask(name="target_key_mask")(target_ids)
    memory_mask = KeyPaddingMask(name="memory_key_mask")(memory_source_ids)
    y = TokenAndPositionEmbedding(
        target_vocab_size, max_target_length, dim, name="target_embedding"
    )(target_ids)
    y = keras.layers.Dropout(dropout)(y)
    for index in range(num_layers):
        y = DecoderBlock(dim, num_heads, ff_dim, dropout, name=f"decoder_block_{index}")(
            y, memory, target_mask, memory_mask
        )
    decoder = keras.Model([target_ids, memory, memory_source_ids], y, name="decoder")

    model_source = keras.Input((None,), dtype="int32", name="source_ids")
    model_target = keras.Input((None,), dtype="int32", name="target_ids")
    states = decoder([model_target, encoder(model_source), model_source])
    # Outside the decoder, so that greedy decoding projects only the last position.
    outputs = keras.layers.Dense(target_vocab_size, name="logits")(states)
    return keras.Model(
        {"source_ids": model_source, "target_ids": model_target},
        outputs,
        name="transformer",
    )


def build_model(cfg, bundle) -> keras.Model:
    vocabularies = bundle.info["vocabularies"]
    return build_transformer(
        source_vocab_size=len(vocabularies.source),
        target_vocab_size=len(vocabularies.target),
        max_source_length=cfg.max_source_length,
        max_target_length=cfg.max_target_length,
        dim=cfg.model_dim,
        num_heads=cfg.num_heads,
        ff_dim=cfg.ff_dim,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout,
    )
