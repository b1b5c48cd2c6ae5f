"""Sentiment models: a bag of n-grams (multi-hot words and n-grams into a small dense
layer), or, over token ids, Kim's (2014) CNN or a bidirectional LSTM."""

from __future__ import annotations

import keras
from keras import layers


def build_model(cfg, bundle) -> keras.Model:
    if cfg.model == "ngram":
        return build_ngram_bag(cfg, bundle)
    vocab_size = len(bundle.info["vocabulary"])
    tokens = keras.Input(shape=(bundle.info["sequence_length"],), dtype="int32", name="tokens")
    embedded = layers.Embedding(vocab_size, cfg.embedding_dim, name="embedding")(tokens)
    if cfg.embedding_dropout:
        embedded = layers.SpatialDropout1D(cfg.embedding_dropout, name="embedding_dropout")(embedded)
    if cfg.model == "cnn":
        # One convolution per kernel size, max-pooled over time, then concatenated.
        pooled = [
            layers.GlobalMaxPooling1D(name=f"max_pool_{k}")(
                layers.Conv1D(cfg.filters, k, activation="relu", name=f"conv_{k}")(embedded)
            )
            for k in cfg.kernel_sizes
        ]
        features = pooled[0] if len(pooled) == 1 else layers.Concatenate(name="concat")(pooled)
    else:
        features = layers.Bidirectional(layers.LSTM(cfg.lstm_units), name="bilstm")(embedded)
    features = layers.Dropout(cfg.dropout, name="dropout")(features)
    probability = layers.Dense(1, activation="sigmoid", name="positive")(features)
    return keras.Model(tokens, probability, name=f"sentiment_{cfg.model}")


def build_ngram_bag(cfg, bundle) -> keras.Model:
    """Multi-hot n-grams -> ReLU layer -> dropout -> sigmoid: a learned n-gram embedding
    bag, the strong baseline for sentiment (Wang & Manning 2012; Chollet, Deep Learning
    with Python, 2nd ed., ch. 11)."""
    bag = keras.Input(shape=(len(bundle.info["vocabulary"]),), name="ngrams")
    features = layers.Dense(cfg.ngram_units, activation="relu", name="ngram_embedding")(bag)
    features = layers.Dropout(cfg.dropout, name="dropout")(features)
    probability = layers.Dense(1, activation="sigmoid", name="positive")(features)
    return keras.Model(bag, probability, name="sentiment_ngram")
