"""Greedy decoding with a trained encoder-decoder, and translation from a run folder.

The source is encoded once; the decoder then reruns on the growing target prefix and
appends its most likely next token, until every sentence has produced [END] or the
translation reaches `max_target_length` tokens. `translate` can use beam search
instead (`beam.py`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from common.errors import UserError
from domains.translation import model as _registered_layers  # noqa: F401
from domains.translation.beam import beam_decode
from domains.translation.tokenizer import (
    END_ID,
    PAD_ID,
    START_ID,
    Encoder,
    Vocabularies,
    ids_to_text,
)

VOCAB_FOLDER = "vocab"
MODEL_FILE = "model.keras"


def greedy_decode(model: keras.Model, source_ids, max_length: int) -> np.ndarray:
    """Translate a padded batch of source ids; returns ids after [START], 0-padded.

    Args:
        model: a model from `build_transformer` (it holds `encoder` and `decoder`).
        source_ids: int array (batch, S), 0 for padding.
        max_length: target length limit including [START] (max_target_length).

    Returns:
        int array (batch, <= max_length - 1): each row ends with [END] unless cut.
    """
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    project = model.get_layer("logits")
    source_ids = ops.convert_to_tensor(source_ids, dtype="int32")
    memory = encoder(source_ids, training=False)
    batch = ops.shape(source_ids)[0]
    tokens = ops.full((batch, 1), START_ID, dtype="int32")
    finished = ops.zeros((batch,), dtype="bool")
    for _ in range(max_length - 1):
        with warnings.catch_warnings():
            # The first step attends over one token: Keras warns, rightly harmless.
            warnings.filterwarnings("ignore", message="You are using a softmax over axis")
            states = decoder([tokens, memory, source_ids], training=False)
        logits = project(states[:, -1, :])
        next_ids = ops.cast(ops.argmax(logits, axis=-1), "int32")
        next_ids = ops.where(finished, PAD_ID, next_ids)
        tokens = ops.concatenate([tokens, ops.expand_dims(next_ids, 1)], axis=1)
        finished = ops.logical_or(finished, ops.equal(next_ids, END_ID))
        if bool(ops.all(finished)):
            break
    return ops.convert_to_numpy(tokens[:, 1:])


def decoding_name(beam_size: int, length_penalty: float) -> str:
    """How `translate` decodes, as summary.json records it."""
    if beam_size == 1:
        return "greedy"
    return f"beam {beam_size}, length penalty {length_penalty:g}"


def translate(
    model: keras.Model,
    vocabularies: Vocabularies,
    sentences: list[str],
    batch_size: int = 128,
    beam_size: int = 1,
    length_penalty: float = 0.6,
) -> list[str]:
    """Detokenised translations of `sentences`, in order: greedy, or beam search when
    `beam_size` > 1 (`batch_size` sentences at once, so batch_size * beam_size rows)."""
    encoder = Encoder(vocabularies)
    # Batches of similar length stop decoding sooner; the order is restored at the end.
    order = sorted(range(len(sentences)), key=lambda index: len(sentences[index]))
    translations: list[str] = [""] * len(sentences)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        chunk = tf.constant([sentences[index] for index in indices])
        source_ids = encoder.source_ids(chunk).to_tensor(default_value=PAD_ID)
        if beam_size > 1:
            decoded = beam_decode(model, source_ids, vocabularies.max_target_length,
                                  beam_size, length_penalty)
        else:
            decoded = greedy_decode(model, source_ids, vocabularies.max_target_length)
        for index, row in zip(indices, decoded, strict=True):
            translations[index] = ids_to_text(row, vocabularies.target)
    return translations


def load_trained_model(run_dir: Path) -> tuple[keras.Model, Vocabularies]:
    """The model and vocabularies a training run saved in `run_dir`."""
    model_path = Path(run_dir) / MODEL_FILE
    if not model_path.is_file():
        raise UserError(
            f"{model_path}: no trained model. Pass --run with the run directory "
            "of a finished `lrsuite train translation`."
        )
    vocabularies = Vocabularies.load(Path(run_dir) / VOCAB_FOLDER)
    try:
        model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    except Exception as error:  # safe mode's refusal, or a damaged or foreign file
        reason = " ".join(str(error).split())
        if "safe_mode" in reason:
            reason = ("it holds Python code (e.g. a Lambda layer), which Keras's safe mode "
                      "refuses to load")
        raise UserError(
            f"{model_path}: cannot load the model: {reason[:300]}. Pass --run with the run "
            "directory of a finished `lrsuite train translation`."
        ) from None
    return model, vocabularies


def translate_from_run(
    run_dir: Path, sentences: list[str], beam_size: int = 1, length_penalty: float = 0.6
) -> list[str]:
    """`lrsuite translate --run DIR "sentence" ...`: one translation per sentence."""
    sentences = [sentence.strip() for sentence in sentences]
    if not sentences or not all(sentences):
        raise UserError(
            "translate: give at least one non-empty sentence to translate."
        )
    model, vocabularies = load_trained_model(Path(run_dir))
    return translate(model, vocabularies, sentences, beam_size=beam_size,
                     length_penalty=length_penalty)


def read_sentence_file(path: Path, flag: str) -> list[str]:
    """One sentence a line (UTF-8); refuses a missing file and empty lines by name."""
    from domains.translation.data import read_lines

    if not path.is_file():
        raise UserError(f"{flag} {path}: file not found. Give a text file with one "
                        "sentence a line.")
    lines = read_lines(path)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise UserError(f"{flag} {path}: line {number} is empty. Give one sentence "
                            "on every line.")
    if not lines:
        raise UserError(f"{flag} {path}: the file is empty. Give one sentence a line.")
    return lines


def score_line(hypotheses: list[str], references: list[str], decoding: str) -> str:
    """The one-line score `lrsuite translate --reference` prints."""
    from domains.translation.bleu import corpus_scores

    scores = corpus_scores(hypotheses, references)
    return (f"BLEU {scores['bleu']:.2f} (cased), {scores['bleu_uncased']:.2f} (uncased), "
            f"chrF {scores['chrf']:.2f}; {len(hypotheses)} sentences, {decoding}; "
            f"{scores['bleu_signature']}")


def run_decoding(run_dir: Path) -> tuple[int, float]:
    """The beam size and length penalty a run scored its test split with (config.json);
    greedy for a run that does not say."""
    try:
        values = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        return int(values.get("beam_size", 1)), float(values.get("length_penalty", 0.6))
    except (OSError, ValueError, TypeError, AttributeError):
        return 1, 0.6


def cmd_translate(argv: list[str]) -> int:
    """`lrsuite translate --run DIR TEXT ...` (or `--input FILE`): print the translation of
    each sentence; with `--reference FILE`, also its BLEU and chrF on standard error."""
    import sys

    from common.cli_args import OneLineParser

    parser = OneLineParser(
        prog="lrsuite translate",
        description="Translate sentences with a trained translation run. With --input and "
        "--reference, score a whole file (e.g. the validation split, to choose --beam-size "
        "and --length-penalty there, not on test).")
    parser.add_argument("--run", required=True, help="run directory of a translation run")
    parser.add_argument("--beam-size", type=int,
                        help="hypotheses kept per sentence; 1 decodes greedily (default: "
                        "what the run scored its test split with, in its config.json)")
    parser.add_argument("--length-penalty", type=float,
                        help="alpha of the GNMT length penalty in beam search (default: "
                        "the run's)")
    parser.add_argument("--input", type=Path, metavar="FILE",
                        help="translate this file instead of TEXT (UTF-8, one sentence a line)")
    parser.add_argument("--reference", type=Path, metavar="FILE",
                        help="reference translations of --input, line by line: print BLEU "
                        "(cased and uncased, sacreBLEU 13a) and chrF to standard error")
    parser.add_argument("text", nargs="*", help="sentences to translate")
    namespace = parser.parse_args(argv)
    run_dir = Path(namespace.run)
    run_beam_size, run_length_penalty = run_decoding(run_dir)
    if namespace.beam_size is None:
        namespace.beam_size = run_beam_size
    if namespace.length_penalty is None:
        namespace.length_penalty = run_length_penalty
    if namespace.beam_size < 1:
        raise UserError(f"--beam-size must be an integer >= 1. Received: {namespace.beam_size}")
    if not namespace.length_penalty >= 0:  # also refuses nan
        raise UserError(
            f"--length-penalty must be a number >= 0. Received: {namespace.length_penalty}"
        )
    if bool(namespace.text) == bool(namespace.input):
        raise UserError("translate: give sentences as TEXT or a file as --input FILE, "
                        "not both and not neither.")
    if namespace.reference and not namespace.input:
        raise UserError("translate: --reference scores a file; give the sentences it "
                        "translates as --input FILE.")
    sentences = (read_sentence_file(namespace.input, "--input") if namespace.input
                 else namespace.text)
    references = None
    if namespace.reference:
        references = read_sentence_file(namespace.reference, "--reference")
        if len(references) != len(sentences):
            raise UserError(
                f"--reference {namespace.reference}: {len(references)} lines, but --input "
                f"{namespace.input} has {len(sentences)}. Give one reference per input line.")
    if not (run_dir / MODEL_FILE).is_file():
        raise UserError(f"{run_dir}: no model.keras there; pass the directory of a "
                        "completed translation run.")
    hypotheses = translate_from_run(run_dir, sentences, namespace.beam_size,
                                    namespace.length_penalty)
    for line in hypotheses:
        print(line)
    if references is not None:
        if Vocabularies.load(run_dir / VOCAB_FOLDER).lowercase:
            references = [reference.lower() for reference in references]
        decoding = decoding_name(namespace.beam_size, namespace.length_penalty)
        print(score_line(hypotheses, references, decoding), file=sys.stderr)
    return 0
