"""A short run on real Multi30k de->en (../shared/data) must beat copying the source."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from domains.translation.bleu import corpus_scores

EVAL_SENTENCES = 200


def multi30k() -> Path:
    shared = os.environ.get("LRSUITE_SHARED_DATA")
    if not shared:
        pytest.skip("LRSUITE_SHARED_DATA is unset: real-data test needs ../shared/data")
    folder = Path(shared) / "translation" / "multi30k_de_en"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    return folder


@pytest.mark.slow
def test_short_multi30k_run_beats_the_copy_source_baseline(tmp_path):
    from common.cli import main

    folder = multi30k()
    code = main([
        "train", "translation", "--data", str(folder), "--output", str(tmp_path),
        "--run-name", "short", "--verbose", "0", "--monitor-every", "0",
        "--epochs", "2", "--steps-per-epoch", "60", "--batch-size", "64",
        "--warmup-epochs", "0.5", "--learning-rate", "2e-3",
        "--model-dim", "64", "--num-heads", "2", "--ff-dim", "128", "--num-layers", "1",
        "--source-vocab-size", "3000", "--target-vocab-size", "2000",
        "--max-eval-sentences", str(EVAL_SENTENCES),
    ])
    assert code == 0
    summary = json.loads((tmp_path / "translation" / "short" / "summary.json").read_text())
    sources = (folder / "de.test.txt").read_text(encoding="utf-8").splitlines()
    references = (folder / "en.test.txt").read_text(encoding="utf-8").splitlines()
    copy_baseline = corpus_scores(sources[:EVAL_SENTENCES], references[:EVAL_SENTENCES])
    assert summary["test_sentences_decoded"] == EVAL_SENTENCES
    assert summary["test_bleu"] > copy_baseline["bleu"] + 1.0, (
        summary["test_bleu"], copy_baseline["bleu"]
    )
