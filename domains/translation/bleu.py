"""Corpus BLEU and chrF with sacreBLEU's defaults (13a tokenizer, case-sensitive).

Hypotheses are detokenised model output; references are the raw test sentences
(lowercased only when the run lowercased its training text), so the numbers match
`sacrebleu REF -i HYP -m bleu chrf` on the same two files.
"""

from __future__ import annotations

from sacrebleu.metrics import BLEU, CHRF


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict:
    """sacreBLEU corpus BLEU and chrF of `hypotheses` against one reference each.

    Returns:
        {"bleu": float, "chrf": float, "bleu_signature": str, "chrf_signature": str}
    """
    if len(hypotheses) != len(references):
        raise ValueError(
            "hypotheses and references must have the same length. Received: "
            f"{len(hypotheses)} hypotheses, {len(references)} references"
        )
    bleu, chrf = BLEU(), CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {
        "bleu": float(bleu_score.score),
        "chrf": float(chrf_score.score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
