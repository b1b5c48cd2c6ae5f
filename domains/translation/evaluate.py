"""After training: decode the test split (greedy, or beam search with --beam-size > 1),
score it with sacreBLEU, keep artefacts.

Writes into the run directory `vocab/tokenizer.json` (what `lrsuite translate` needs
beside model.keras), `test_translations.tsv` (source, reference, hypothesis per line)
and a table of triples on TensorBoard's text dashboard (run `test`).
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from domains.translation.bleu import corpus_scores
from domains.translation.decoding import VOCAB_FOLDER, decoding_name, translate

TRANSLATIONS_FILE = "test_translations.tsv"


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def triples_markdown(sources, references, hypotheses) -> str:
    rows = ["| source | reference | hypothesis |", "| --- | --- | --- |"]
    for triple in zip(sources, references, hypotheses, strict=True):
        rows.append("| " + " | ".join(_markdown_cell(text) for text in triple) + " |")
    return "\n".join(rows)


def evaluate_extra(model, bundle, cfg, run_dir: Path) -> dict:
    """Test BLEU and chrF (sacreBLEU, 13a, cased unless --lowercase) of decoded output."""
    vocabularies = bundle.info["vocabularies"]
    vocabularies.save(run_dir / VOCAB_FOLDER)
    sources, references = bundle.info["test_pairs"]
    if cfg.max_eval_sentences is not None:
        sources = sources[: cfg.max_eval_sentences]
        references = references[: cfg.max_eval_sentences]
    if cfg.lowercase:  # score on the same normalisation the model was trained on
        references = [reference.lower() for reference in references]
    hypotheses = translate(model, vocabularies, sources, batch_size=cfg.decode_batch_size,
                           beam_size=cfg.beam_size, length_penalty=cfg.length_penalty)
    scores = corpus_scores(hypotheses, references)

    with (run_dir / TRANSLATIONS_FILE).open("w", encoding="utf-8") as stream:
        for triple in zip(sources, references, hypotheses, strict=True):
            stream.write("\t".join(" ".join(text.split()) for text in triple) + "\n")
    shown = cfg.text_examples
    if shown:
        writer = tf.summary.create_file_writer(str(run_dir / "test"))
        with writer.as_default():
            tf.summary.text(
                "translations",
                triples_markdown(sources[:shown], references[:shown], hypotheses[:shown]),
                step=0,
            )
        writer.flush()
        writer.close()
    return {
        "test_bleu": scores["bleu"],
        "test_chrf": scores["chrf"],
        "test_bleu_uncased": scores["bleu_uncased"],
        "test_bleu_signature": scores["bleu_signature"],
        "test_chrf_signature": scores["chrf_signature"],
        "test_bleu_uncased_signature": scores["bleu_uncased_signature"],
        "test_sentences_decoded": len(hypotheses),
        "test_decoding": decoding_name(cfg.beam_size, cfg.length_penalty),
    }
