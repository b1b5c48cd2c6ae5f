"""Beam search decoding: greedy at width 1, never worse than greedy, escapes a planted
trap, respects max_length and padding, and reaches summary.json and the command line."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest
from keras import ops

from domains.translation.beam import beam_decode, gnmt_length_penalty
from domains.translation.config import TranslationConfig
from domains.translation.decoding import greedy_decode, translate
from domains.translation.evaluate import evaluate_extra
from domains.translation.model import build_transformer
from domains.translation.tokenizer import END_ID, START_ID
from tests.domains.translation_fixtures import save_tiny_run

VOCAB = 14  # ids 4..13 are words; 0 pad, 1 [UNK], 2 [START], 3 [END]
MAX_LENGTH = 10


def tiny_transformer(seed: int, end_bias: float) -> keras.Model:
    """A random 1-layer model; `end_bias` on the [END] logit sets how soon it stops."""
    keras.utils.set_random_seed(seed)
    model = build_transformer(
        source_vocab_size=VOCAB, target_vocab_size=VOCAB, max_source_length=MAX_LENGTH,
        max_target_length=MAX_LENGTH, dim=16, num_heads=2, ff_dim=32, num_layers=1,
        dropout=0.0,
    )
    project = model.get_layer("logits")
    kernel, bias = project.get_weights()
    bias[END_ID] += end_bias
    # Sharper next-token distributions than at initialisation, so that choices matter.
    project.set_weights([3 * kernel, bias])
    return model


def random_sources(count: int, seed: int = 0) -> np.ndarray:
    """Source ids of lengths 2..6, 0-padded to 6 columns."""
    rng = np.random.default_rng(seed)
    sources = np.zeros((count, 6), "int32")
    for row in range(count):
        length = rng.integers(2, 7)
        sources[row, :length] = rng.integers(4, VOCAB, length)
    return sources


def normalised_log_probability(model, source, decoded_row, alpha: float) -> float:
    """Score one decoded row by teacher forcing through the full model, independently
    of either decoder: sum of log-probabilities over the GNMT length penalty."""
    row = decoded_row.tolist()
    length = row.index(END_ID) + 1 if END_ID in row else len(row)
    targets = row[:length]
    logits = model(
        {"source_ids": np.asarray([source], "int32"),
         "target_ids": np.asarray([[START_ID, *targets[:-1]]], "int32")},
        training=False,
    ).numpy()[0].astype("float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return log_probs[np.arange(length), targets].sum() / gnmt_length_penalty(length, alpha)


def test_beam_of_one_is_greedy():
    model = tiny_transformer(seed=0, end_bias=1.0)
    sources = random_sources(8)
    greedy = greedy_decode(model, sources, MAX_LENGTH)
    # The batch mixes rows that end with [END] and rows cut at max_length.
    assert 0 < (greedy == END_ID).any(axis=1).sum() < len(sources)
    np.testing.assert_array_equal(beam_decode(model, sources, MAX_LENGTH, beam_size=1), greedy)


def test_beam_scores_at_least_as_well_as_greedy_on_every_sentence():
    model = tiny_transformer(seed=0, end_bias=2.0)
    sources = random_sources(8)
    alpha = 0.6
    greedy = greedy_decode(model, sources, MAX_LENGTH)
    beam = beam_decode(model, sources, MAX_LENGTH, beam_size=4, length_penalty=alpha)
    greedy_scores = np.array([normalised_log_probability(model, source, row, alpha)
                              for source, row in zip(sources, greedy, strict=True)])
    beam_scores = np.array([normalised_log_probability(model, source, row, alpha)
                            for source, row in zip(sources, beam, strict=True)])
    # Not a theorem for beam search, but true of this model; a wrong score breaks it.
    assert (beam_scores >= greedy_scores - 1e-5).all(), (beam_scores, greedy_scores)
    assert (beam_scores > greedy_scores + 1e-4).any()  # the beam found something better


# ## Planted cases: bigram models with known probabilities

A, B, C = 4, 5, 6
BIGRAM_VOCAB = 8


def bigram_model(next_token_probabilities: dict[int, dict[int, float]]):
    """A stand-in for `build_transformer` whose next-token probabilities depend on the
    last token only; ids a row leaves out get 1e-6, rows left out go to [END]."""
    table = np.full((BIGRAM_VOCAB, BIGRAM_VOCAB), 1e-6)
    table[:, END_ID] = 1.0
    for last, row in next_token_probabilities.items():
        table[last] = 1e-6
        for token, probability in row.items():
            table[last, token] = probability
    log_table = ops.convert_to_tensor(np.log(table / table.sum(1, keepdims=True)), "float32")

    def encoder(source_ids, training=False):
        return ops.expand_dims(ops.cast(source_ids, "float32"), -1)

    def decoder(inputs, training=False):  # states: one-hot of each target token
        return ops.one_hot(inputs[0], BIGRAM_VOCAB)

    def logits(states):
        return ops.matmul(states, log_table)

    layers = {"encoder": encoder, "decoder": decoder, "logits": logits}
    return SimpleNamespace(get_layer=layers.__getitem__)


SOURCE = np.array([[4, 5, 0]], "int32")


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_escapes_a_trap_that_greedy_falls_into(alpha):
    # Greedy takes A C [END] (log-probability -2.63); B [END] (-0.93) is far better,
    # with or without the length penalty.
    model = bigram_model({
        START_ID: {A: 0.6, B: 0.4},
        A: {C: 0.2, END_ID: 0.1, **{token: 0.7 / 5 for token in (0, 1, START_ID, B, 7)}},
        B: {END_ID: 0.99},
        C: {END_ID: 0.6, A: 0.4},
    })
    assert greedy_decode(model, SOURCE, 6).tolist() == [[A, C, END_ID]]
    assert beam_decode(model, SOURCE, 6, beam_size=2, length_penalty=alpha).tolist() == [
        [B, END_ID]
    ]


@pytest.mark.parametrize(("alpha", "expected"), [(0.0, [END_ID]), (2.0, [A, END_ID])])
def test_length_penalty_decides_between_short_and_long(alpha, expected):
    # [END] alone: log 0.5 = -0.69. A [END]: log 0.5 + log 0.9 = -0.80, which the
    # penalty ((5 + 2) / 6)^2 = 1.36 lifts to -0.59, above -0.69 / 1.
    model = bigram_model({START_ID: {END_ID: 0.5, A: 0.5}, A: {END_ID: 0.9, B: 0.1}})
    decoded = beam_decode(model, SOURCE, 6, beam_size=2, length_penalty=alpha)
    assert decoded.tolist() == [expected]


def test_max_length_cuts_every_hypothesis():
    model = tiny_transformer(seed=1, end_bias=-30.0)  # [END] is never likely
    sources = random_sources(4)
    for max_length in (3, 6):
        decoded = beam_decode(model, sources, max_length, beam_size=3)
        assert decoded.shape == (4, max_length - 1)
        assert not (decoded == END_ID).any()
        np.testing.assert_array_equal(
            beam_decode(model, sources, max_length, beam_size=1),
            greedy_decode(model, sources, max_length),
        )


def test_rows_end_with_end_and_padding_follows():
    model = tiny_transformer(seed=0, end_bias=2.0)
    decoded = beam_decode(model, random_sources(8), MAX_LENGTH, beam_size=4)
    assert decoded.shape[1] <= MAX_LENGTH - 1
    for row in decoded.tolist():
        if END_ID in row:
            assert not any(row[row.index(END_ID) + 1 :])


def test_source_padding_does_not_change_the_beam():
    model = tiny_transformer(seed=2, end_bias=2.0)
    sentence = [7, 8, 9]
    alone = beam_decode(model, np.array([sentence], "int32"), MAX_LENGTH, beam_size=4)[0]
    batch = random_sources(5, seed=3)
    batch = np.pad(batch, ((0, 0), (0, 3)))  # extra padding columns
    batch[2] = 0
    batch[2, :3] = sentence
    in_batch = beam_decode(model, batch, MAX_LENGTH, beam_size=4)[2]
    assert in_batch[: len(alone)].tolist() == alone.tolist()
    assert not in_batch[len(alone) :].any()


# ## Through translate, summary.json and the command line


def _saved_run(tmp_path):
    sources = ["zwei rote Hunde .", "ein Haus ."]
    model, vocabularies = save_tiny_run(tmp_path, sources, ["two red dogs.", "one house."])
    return model, vocabularies, sources


@pytest.mark.parametrize(("beam_size", "decoding"), [
    (1, "greedy"), (3, "beam 3, length penalty 0.6"),
])
def test_summary_records_the_decoding(tmp_path, beam_size, decoding):
    model, vocabularies, sources = _saved_run(tmp_path)
    references = ["two red dogs.", "one house."]
    bundle = SimpleNamespace(info={"vocabularies": vocabularies,
                                   "test_pairs": (sources, references)})
    cfg = TranslationConfig.smoke(beam_size=beam_size)
    extra = evaluate_extra(model, bundle, cfg, tmp_path)
    assert extra["test_decoding"] == decoding
    hypotheses = [line.split("\t")[2] for line in
                  (tmp_path / "test_translations.tsv").read_text().splitlines()]
    expected = translate(model, vocabularies, sources, beam_size=beam_size)
    assert hypotheses == [" ".join(text.split()) for text in expected]


def test_translate_command_takes_a_beam_size(tmp_path, capsys):
    from common.cli import main

    model, vocabularies, sources = _saved_run(tmp_path)
    capsys.readouterr()
    assert main(["translate", "--run", str(tmp_path), "--beam-size", "3", *sources]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == translate(model, vocabularies, sources, beam_size=3)


@pytest.mark.parametrize(("config", "flags", "expected"), [
    ({"beam_size": 3, "length_penalty": 0.0}, [], (3, 0.0)),
    ({"beam_size": 3, "length_penalty": 0.0}, ["--beam-size", "1"], (1, 0.0)),
    ({"beam_size": 3, "length_penalty": 0.0}, ["--length-penalty", "1.5"], (3, 1.5)),
    (None, [], (1, 0.6)),  # a run without config.json decodes greedily
])
def test_translate_command_decodes_as_the_run_scored_its_test_split(
        tmp_path, capsys, monkeypatch, config, flags, expected):
    import json

    from common.cli import main
    from domains.translation import decoding

    _saved_run(tmp_path)
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    used = []

    def recording_translate(run_dir, sentences, beam_size, length_penalty):
        used.append((beam_size, length_penalty))
        return ["x"] * len(sentences)

    monkeypatch.setattr(decoding, "translate_from_run", recording_translate)
    assert main(["translate", "--run", str(tmp_path), *flags, "ein Haus ."]) == 0
    assert used == [expected]


def test_translate_command_scores_a_file_against_its_references(tmp_path, capsys):
    from common.cli import main
    from domains.translation.bleu import corpus_scores

    model, vocabularies, sources = _saved_run(tmp_path)
    references = ["Two red dogs.", "One house."]
    (tmp_path / "src.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("\n".join(references) + "\n", encoding="utf-8")
    capsys.readouterr()
    code = main(["translate", "--run", str(tmp_path), "--beam-size", "3",
                 "--input", str(tmp_path / "src.txt"), "--reference", str(tmp_path / "ref.txt")])
    assert code == 0
    printed = capsys.readouterr()
    hypotheses = translate(model, vocabularies, sources, beam_size=3)
    assert printed.out.splitlines() == hypotheses
    scores = corpus_scores(hypotheses, references)
    expected = (f"BLEU {scores['bleu']:.2f} (cased), {scores['bleu_uncased']:.2f} (uncased), "
                f"chrF {scores['chrf']:.2f}; 2 sentences, beam 3, length penalty 0.6")
    assert printed.err.startswith(expected), printed.err


def test_uncased_bleu_ignores_only_case():
    from domains.translation.bleu import corpus_scores

    references = ["A man rides a bike in the park.", "Two dogs play in the snow."]
    shouted = [reference.upper() for reference in references]
    scores = corpus_scores(shouted, references)
    assert scores["bleu_uncased"] == pytest.approx(100.0)
    assert scores["bleu"] < 5.0
    assert "case:lc" in scores["bleu_uncased_signature"] and "case:mixed" in scores["bleu_signature"]


@pytest.mark.parametrize(("args", "needle"), [
    (["translate", "--run", "R", "--input", "missing.txt"], "--input missing.txt: file not found"),
    (["translate", "--run", "R", "--input", "src.txt", "ein Haus"], "not both and not neither"),
    (["translate", "--run", "R"], "not both and not neither"),
    (["translate", "--run", "R", "--reference", "ref.txt", "ein Haus"], "give the sentences"),
    (["translate", "--run", "R", "--input", "gap.txt"], "line 2 is empty"),
    (["translate", "--run", "R", "--input", "src.txt", "--reference", "short.txt"],
     "1 lines, but --input"),
])
def test_translate_file_mistakes_are_one_line_exit_2(tmp_path, capsys, monkeypatch, args, needle):
    from common.cli import main

    monkeypatch.chdir(tmp_path)
    Path("src.txt").write_text("ein Haus .\nzwei Hunde .\n", encoding="utf-8")
    Path("gap.txt").write_text("ein Haus .\n\nzwei Hunde .\n", encoding="utf-8")
    Path("short.txt").write_text("a house .\n", encoding="utf-8")
    assert main(args) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("lrsuite: error") and needle in error[0], error


@pytest.mark.parametrize(("args", "needle"), [
    (["train", "translation", "--beam-size", "0"], "beam_size must be an integer >= 1"),
    (["train", "translation", "--length-penalty", "-1"], "length_penalty must be >= 0"),
    (["translate", "--run", "nowhere", "--beam-size", "0", "ein Haus"],
     "--beam-size must be an integer >= 1"),
])
def test_bad_beam_settings_are_one_line_exit_2(tmp_path, capsys, args, needle):
    from common.cli import main

    code = main([*args, *(["--output", str(tmp_path / "runs")] if args[0] == "train" else [])])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("lrsuite: error") and needle in error[0], error
    assert not (tmp_path / "runs").exists()
