"""Sentiment analysis defaults: a bag of words and bigrams into a small dense layer (the
better of it and Kim's CNN on validation accuracy, README.md), the CNN one flag away."""

from __future__ import annotations

from dataclasses import dataclass

from common.config import TrainConfig, help_field

MODELS = ("ngram", "cnn", "bilstm")
STANDARDIZE = ("lower_and_split_punctuation", "lower_and_strip_punctuation", "lower", "none")


@dataclass(frozen=True, kw_only=True)
class SentimentConfig(TrainConfig):
    domain: str = "sentiment"
    epochs: int = 12
    batch_size: int = 50
    learning_rate: float | str = 3e-4
    optimizer: str = "adam"
    early_stopping: int = 2
    jit_compile: str = "off"  # measured: XLA makes this model 1.6x slower per step on CPU
    tfds_name: str = help_field("imdb_reviews", help="TFDS dataset used when --data is unset.")
    vocab_size: int = help_field(
        20000, help="Vocabulary size of the TextVectorization layer (words; for ngram, "
        "words and n-grams)."
    )
    sequence_length: int = help_field(
        0, help="Tokens kept per text (0: the 95th percentile of training lengths, max 400)."
    )
    standardize: str = help_field(
        "lower_and_split_punctuation",
        help="Text standardisation before splitting on whitespace: "
        "lower_and_split_punctuation (punctuation becomes tokens: '!' and '?' carry "
        "sentiment), lower_and_strip_punctuation, lower or none.",
    )
    model: str = help_field(
        "ngram",
        help="Architecture: ngram (a bag of words and n-grams into a small dense layer), "
        "cnn (Kim's CNN over word embeddings) or bilstm.",
    )
    ngrams: int = help_field(2, help="Longest n-gram in the bag (ngram).")
    ngram_units: int = help_field(16, help="Units of the dense layer over the bag (ngram).")
    embedding_dim: int = help_field(128, help="Width of the learned word embeddings (cnn, bilstm).")
    filters: int = help_field(100, help="Convolution filters per kernel size (cnn).")
    kernel_sizes: tuple[int, ...] = help_field((1, 2, 3, 4, 5), help="Kernel sizes (cnn).")
    lstm_units: int = help_field(64, help="Units per direction (bilstm).")
    embedding_dropout: float = help_field(
        0.3, help="Dropout of whole embedding channels (SpatialDropout1D; cnn, bilstm)."
    )
    dropout: float = help_field(0.5, help="Dropout before the output layer.")
    val_fraction: float = help_field(
        0.1, help="Share of train held out for validation when there is no validation split."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.standardize not in STANDARDIZE:
            raise ValueError(
                f"Unknown standardize. Expected one of: {', '.join(STANDARDIZE)}. "
                f"Received: standardize={self.standardize!r}"
            )
        if self.model not in MODELS:
            raise ValueError(
                f"Unknown model. Expected one of: {', '.join(MODELS)}. Received: model={self.model!r}"
            )
        for name in ("vocab_size", "embedding_dim", "filters", "lstm_units", "ngrams",
                     "ngram_units"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1. Received: {name}={getattr(self, name)!r}")
        if self.vocab_size < 3:
            raise ValueError(f"vocab_size must be >= 3. Received: vocab_size={self.vocab_size}")
        if self.sequence_length < 0:
            raise ValueError(
                f"sequence_length must be >= 0 (0: automatic). Received: {self.sequence_length}"
            )
        if not self.kernel_sizes or min(self.kernel_sizes) < 1:
            raise ValueError(f"kernel_sizes must be >= 1. Received: {self.kernel_sizes}")
        for name in ("dropout", "embedding_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1). Received: {name}={getattr(self, name)}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(
                f"val_fraction must be in (0, 1). Received: val_fraction={self.val_fraction}"
            )

    @classmethod
    def smoke(cls, **overrides):
        values = dict(epochs=2, batch_size=8, steps_per_epoch=6, vocab_size=200, early_stopping=0,
                      sequence_length=16, embedding_dim=8, filters=4, lstm_units=4, ngram_units=4,
                      monitor_every=2, log_lr_every=1)
        values.update(overrides)
        return cls(**values)
