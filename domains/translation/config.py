"""Translation config: a small Transformer encoder-decoder and its vocabularies.

The defaults are the real-size run (`make train-translation`): TFDS
`ted_hrlr_translate/pt_to_en`, word vocabularies of 10,000 / 8,000 entries, a
3+3-layer Transformer of width 256, the Transformer warmup schedule, an average of the
weights (momentum 0.999) and beam search of width 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.config import TrainConfig, help_field

DEFAULT_TFDS_NAME = "ted_hrlr_translate/pt_to_en"


def _check_at_least(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum}. Received: {name}={value!r}"
        )


def _check_language(name: str, value: str | None) -> None:
    if value is None:
        return
    if not value or "." in value or "/" in value or "\t" in value:
        raise ValueError(
            f"{name} must be a language code such as 'de' or 'en' (no '.', '/' "
            f"or tab). Received: {name}={value!r}"
        )


@dataclass(frozen=True, kw_only=True)
class TranslationConfig(TrainConfig):
    domain: str = "translation"
    tfds_name: str = help_field(
        DEFAULT_TFDS_NAME,
        help="TFDS translation dataset used when --data is unset.",
    )
    source_lang: str | None = help_field(
        None,
        help="Source language code. Unset: 'pt' for the TFDS default; for a "
        "folder, the one language there besides --target-lang.",
    )
    target_lang: str = help_field("en", help="Target language code.")
    validation_fraction: float = help_field(
        0.05,
        help="Share of train carved off (seeded) as validation, and as test, "
        "when the data has no such split.",
    )
    source_vocab_size: int = help_field(
        10000, help="Most frequent source words kept (pad and [UNK] included)."
    )
    target_vocab_size: int = help_field(
        8000,
        help="Most frequent target words kept (pad, [UNK], [START], [END] "
        "included).",
    )
    lowercase: bool = help_field(
        False,
        help="Lowercase both sides before building vocabularies (BLEU is then "
        "computed on lowercased references too).",
    )
    max_source_length: int = help_field(
        40, help="Source tokens kept per sentence (longer ones are cut)."
    )
    max_target_length: int = help_field(
        40,
        help="Target tokens per sentence including [START]/[END]; also the "
        "longest translation decoding produces.",
    )
    model_dim: int = help_field(256, help="Width of embeddings and attention.")
    num_heads: int = help_field(4, help="Attention heads (must divide model_dim).")
    ff_dim: int = help_field(512, help="Hidden width of each feed-forward block.")
    num_layers: int = help_field(
        3, help="Layers in the encoder, and again in the decoder."
    )
    dropout: float = help_field(0.1, help="Dropout rate in the Transformer.")
    label_smoothing: float = help_field(
        0.1, help="Label smoothing of the token cross-entropy, in [0, 1)."
    )
    bucket_by_length: bool = help_field(
        True,
        help="Batch training pairs of similar length together, so that batches "
        "carry little padding (about 1.5x the steps per second on Multi30k).",
    )
    decode_batch_size: int = help_field(
        128, help="Sentences decoded at once when scoring BLEU."
    )
    beam_size: int = help_field(
        4,
        help="Beam search width when decoding the test split; 1 decodes greedily "
        "(on Multi30k validation beam 4 scored 0.9 BLEU above greedy).",
    )
    length_penalty: float = help_field(
        0.6,
        help="Alpha of the GNMT length penalty ((5 + length) / 6)^alpha that beam "
        "search divides log-probabilities by; 0 ranks by raw log-probability.",
    )
    max_eval_sentences: int | None = help_field(
        None,
        help="Decode only the first N test sentences for BLEU (unset: all).",
    )
    text_examples: int = help_field(
        8,
        help="Source/reference/hypothesis triples written to TensorBoard text.",
    )
    # Shared fields with translation's own defaults.
    epochs: int = help_field(10, help="Number of epochs.")
    batch_size: int = help_field(64, help="Sentence pairs per training step.")
    learning_rate: float | str = help_field(
        1e-3,
        help="Peak learning rate (reached at the end of warmup), or 'auto' to "
        "run the LR range test and use its suggestion.",
    )
    optimizer: str = help_field("adam", help="Optimizer.")
    weight_averaging: float = help_field(
        0.999,
        help="Validate, test and save an exponential moving average of the weights, "
        "this momentum (0: off). The Transformer schedule still runs at 3e-4 at the end, "
        "where the average gained 0.7 test BLEU on Multi30k.",
    )
    epsilon: float = help_field(1e-9, help="Optimizer epsilon (the paper's 1e-9).")
    schedule: str = help_field(
        "transformer",
        help="Learning-rate schedule; default: the Transformer's linear warmup "
        "then inverse square root.",
    )
    warmup_epochs: float = help_field(
        1.0, help="Warmup length in epochs for schedules that take one."
    )
    jit_compile: str = help_field(
        "off",
        help="XLA compilation of the training step: auto, on, off. Off by default: "
        "batches are padded to their own length, and XLA recompiles for each shape.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_language("source_lang", self.source_lang)
        _check_language("target_lang", self.target_lang)
        if self.source_lang is not None and self.source_lang == self.target_lang:
            raise ValueError(
                "source_lang and target_lang must differ. Received: "
                f"source_lang={self.source_lang!r}, target_lang={self.target_lang!r}"
            )
        if not 0 < self.validation_fraction < 0.5:
            raise ValueError(
                "validation_fraction must be in (0, 0.5). "
                f"Received: validation_fraction={self.validation_fraction!r}"
            )
        _check_at_least("source_vocab_size", self.source_vocab_size, 4)
        _check_at_least("target_vocab_size", self.target_vocab_size, 6)
        _check_at_least("max_source_length", self.max_source_length, 1)
        _check_at_least("max_target_length", self.max_target_length, 3)
        for name in ("model_dim", "num_heads", "ff_dim", "num_layers"):
            _check_at_least(name, getattr(self, name), 1)
        if self.model_dim % self.num_heads:
            raise ValueError(
                "model_dim must be a multiple of num_heads. Received: "
                f"model_dim={self.model_dim}, num_heads={self.num_heads}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1). Received: dropout={self.dropout!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                "label_smoothing must be in [0, 1). "
                f"Received: label_smoothing={self.label_smoothing!r}"
            )
        _check_at_least("decode_batch_size", self.decode_batch_size, 1)
        _check_at_least("beam_size", self.beam_size, 1)
        if not self.length_penalty >= 0:  # also refuses nan
            raise ValueError(
                f"length_penalty must be >= 0. Received: length_penalty={self.length_penalty!r}"
            )
        if self.max_eval_sentences is not None:
            _check_at_least("max_eval_sentences", self.max_eval_sentences, 1)
        _check_at_least("text_examples", self.text_examples, 0)

    @classmethod
    def smoke(cls, **overrides: Any) -> TranslationConfig:
        """A tiny preset for tests: a 1+1-layer Transformer of width 16."""
        values: dict[str, Any] = {
            "epochs": 2,
            "batch_size": 4,
            "steps_per_epoch": 3,
            "warmup_epochs": 1.0,
            "source_vocab_size": 200,
            "target_vocab_size": 200,
            "max_source_length": 12,
            "max_target_length": 12,
            "model_dim": 16,
            "num_heads": 2,
            "ff_dim": 32,
            "num_layers": 1,
            "max_eval_sentences": 16,
            "text_examples": 3,
        }
        values.update(overrides)
        return cls(**values)
