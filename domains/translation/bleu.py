"""Corpus BLEU and chrF with sacreBLEU's defaults (13a tokenizer, case-sensitive).

Hypotheses are detokenised model output; references are the raw test sentences
(lowercased only when the run lowercased its training text), so the numbers match
`sacrebleu REF -i HYP -m bleu chrf` on the same two files.

Beside it, the case-insensitive BLEU (`sacrebleu -lc`): the protocol of the published
Multi30k figures this suite compares with (bentrevett/pytorch-seq2seq lowercases all text
before training and scoring), so that a comparison with them is like for like.
"""

from __future__ import annotations

from sacrebleu.metrics import BLEU, CHRF


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict:
    """sacreBLEU corpus BLEU and chrF of `hypotheses` against one reference each.

    Returns:
        {"bleu": float, "chrf": float, "bleu_uncased": float, "bleu_signature": str,
         "chrf_signature": str, "bleu_uncased_signature": str}
    """
    if len(hypotheses) != len(references):
        raise ValueError(
            "hypotheses and references must have the same length. Received: "
            f"{len(hypotheses)} hypotheses, {len(references)} references"
        )
    bleu, chrf, bleu_uncased = BLEU(), CHRF(), BLEU(lowercase=True)
    return {
        "bleu": float(bleu.corpus_score(hypotheses, [references]).score),
        "chrf": float(chrf.corpus_score(hypotheses, [references]).score),
        "bleu_uncased": float(bleu_uncased.corpus_score(hypotheses, [references]).score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "bleu_uncased_signature": str(bleu_uncased.get_signature()),
    }
