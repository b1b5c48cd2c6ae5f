"""A tiny saved translation run (model.keras + vocab/) for decoding and CLI tests."""

from __future__ import annotations

from pathlib import Path

import keras

from domains.translation.model import build_transformer
from domains.translation.tokenizer import build_vocabularies


def save_tiny_run(run_dir: Path, sources: list[str], targets: list[str], seed: int = 5):
    """Build a random 1-layer Transformer over vocabularies of `sources`/`targets`, save
    both where `lrsuite translate --run` looks, and return (model, vocabularies)."""
    keras.utils.set_random_seed(seed)
    vocabularies = build_vocabularies(
        sources, targets, source_size=20, target_size=20,
        lowercase=False, max_source_length=8, max_target_length=8,
    )
    model = build_transformer(
        source_vocab_size=len(vocabularies.source), target_vocab_size=len(vocabularies.target),
        max_source_length=8, max_target_length=8, dim=16, num_heads=2, ff_dim=32,
        num_layers=1, dropout=0.0,
    )
    model.save(Path(run_dir) / "model.keras")
    vocabularies.save(Path(run_dir) / "vocab")
    return model, vocabularies
