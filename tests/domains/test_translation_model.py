"""Translation model: masks, loss and metric, greedy decoding, BLEU, and a full run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.errors import UserError
from domains.translation.bleu import corpus_scores
from domains.translation.decoding import greedy_decode, translate, translate_from_run
from domains.translation.losses import MaskedSparseCrossentropy, MaskedTokenAccuracy
from domains.translation.model import (
    build_transformer,
)
from domains.translation.tokenizer import END_ID, START_ID
from tests.domains.translation_fixtures import save_tiny_run

VOCAB = 14  # ids 4..13 are words; 0 pad, 1 [UNK], 2 [START], 3 [END]


def tiny_transformer(num_layers=2, dim=16, max_length=10):
    return build_transformer(
        source_vocab_size=VOCAB, target_vocab_size=VOCAB, max_source_length=max_length,
        max_target_length=max_length, dim=dim, num_heads=2, ff_dim=2 * dim,
        num_layers=num_layers, dropout=0.0,
    )


def predict(model, source_ids, target_ids):
    return model(
        {"source_ids": np.asarray(source_ids, "int32"), "target_ids": np.asarray(target_ids, "int32")},
        training=False,
    ).numpy()


# ## Masks


def test_decoder_cannot_see_the_future():
    keras.utils.set_random_seed(0)
    model = tiny_transformer()
    rng = np.random.default_rng(0)
    source = rng.integers(4, VOCAB, (3, 6))
    target = rng.integers(4, VOCAB, (3, 8))
    before = predict(model, source, target)
    for changed in (3, 7):
        future = target.copy()
        future[:, changed] = (future[:, changed] - 4 + 1) % (VOCAB - 4) + 4
        after = predict(model, source, future)
        # Outputs before the changed token are untouched ...
        np.testing.assert_allclose(after[:, :changed], before[:, :changed], atol=1e-5)
        # ... and the change is visible from its own position on (the test can fail).
        assert np.abs(after[:, changed:] - before[:, changed:]).max() > 1e-3


def test_padding_is_invisible():
    keras.utils.set_random_seed(1)
    model = tiny_transformer()
    rng = np.random.default_rng(1)
    source = rng.integers(4, VOCAB, (2, 5))
    target = rng.integers(4, VOCAB, (2, 6))
    reference = predict(model, source, target)
    padded_source = np.pad(source, ((0, 0), (0, 4)))
    np.testing.assert_allclose(predict(model, padded_source, target), reference, atol=1e-5)
    padded_target = np.pad(target, ((0, 0), (0, 3)))
    np.testing.assert_allclose(
        predict(model, source, padded_target)[:, :6], reference, atol=1e-5
    )
    # A real source token in place of the padding does change the output.
    filled = padded_source.copy()
    filled[:, 5:] = 4
    assert np.abs(predict(model, filled, target) - reference).max() > 1e-3


def test_model_saves_and_loads_in_safe_mode(tmp_path):
    keras.utils.set_random_seed(2)
    model = tiny_transformer(num_layers=1)
    source, target = [[5, 6, 7, 0]], [[START_ID, 8, 9]]
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(
        predict(loaded, source, target), predict(model, source, target), atol=1e-6
    )
    assert loaded.get_layer("encoder") is not None and loaded.get_layer("decoder") is not None


# ## Loss and metric


def test_loss_averages_real_tokens_with_label_smoothing():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 4, 6)).astype("float32")
    labels = np.array([[4, 5, 3, 0], [2, 3, 0, 0]])
    smoothing = 0.1
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = []
    for row, column in zip(*np.nonzero(labels), strict=True):
        nll = -log_probs[row, column, labels[row, column]]
        expected.append((1 - smoothing) * nll - smoothing * log_probs[row, column].mean())
    value = float(MaskedSparseCrossentropy(smoothing)(labels, logits))
    assert value == pytest.approx(np.mean(expected), rel=1e-5)
    # Whatever the model predicts at padding does not count.
    noisy = logits.copy()
    noisy[labels == 0] += 50 * rng.normal(size=noisy[labels == 0].shape)
    assert float(MaskedSparseCrossentropy(smoothing)(labels, noisy)) == pytest.approx(value, rel=1e-5)


def test_masked_accuracy_ignores_padding():
    labels = np.array([[4, 5, 0, 0], [6, 0, 0, 0]])
    predicted = np.array([[4, 7, 1, 1], [6, 2, 2, 2]])
    metric = MaskedTokenAccuracy()
    metric.update_state(labels, np.eye(8)[predicted])
    assert float(metric.result()) == pytest.approx(2 / 3)


# ## Greedy decoding on a copy task


def copy_batch(rng, count, max_length=6):
    source = np.zeros((count, max_length), "int32")
    target = np.zeros((count, max_length + 2), "int32")
    for row in range(count):
        length = rng.integers(2, max_length + 1)
        words = rng.integers(4, VOCAB, length)
        source[row, :length] = words
        target[row, 0] = START_ID
        target[row, 1 : length + 1] = words
        target[row, length + 1] = END_ID
    return source, target


def test_greedy_decoding_learns_a_copy_task_perfectly():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    source, target = copy_batch(rng, 4096)
    model = tiny_transformer(num_layers=1, dim=32, max_length=8)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=MaskedSparseCrossentropy(),
        metrics=[MaskedTokenAccuracy()],
    )
    model.fit(
        {"source_ids": source, "target_ids": target[:, :-1]}, target[:, 1:],
        batch_size=64, epochs=6, verbose=0,
    )
    held_out, expected = copy_batch(np.random.default_rng(1), 128)
    decoded = greedy_decode(model, held_out, max_length=8)
    for row in range(len(held_out)):
        words = held_out[row][held_out[row] > 0].tolist()
        assert decoded[row].tolist()[: len(words) + 1] == words + [END_ID], row
        assert not decoded[row, len(words) + 1 :].any()  # nothing after [END]


def test_greedy_decode_stops_at_max_length():
    keras.utils.set_random_seed(4)
    model = tiny_transformer(num_layers=1)
    decoded = greedy_decode(model, np.array([[5, 6, 7]], "int32"), max_length=5)
    assert decoded.shape[1] <= 4


# ## BLEU


HYPOTHESES = [
    "The cat sat on the mat.",
    "A man in an orange hat is looking at something.",
    "Two dogs play in the snow .",
    "A girl breaks a board with a kick!",
]
REFERENCES = [
    "The cat is sitting on the mat.",
    "A man in an orange hat starring at something.",
    "Two dogs are playing in the snow.",
    "A girl in karate uniform breaking a stick with a front kick.",
]


def test_bleu_matches_the_sacrebleu_command_line(tmp_path):
    (tmp_path / "hyp.txt").write_text("\n".join(HYPOTHESES) + "\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("\n".join(REFERENCES) + "\n", encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i",
         str(tmp_path / "hyp.txt"), "-m", "bleu", "chrf", "-w", "4"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    cli_bleu, cli_chrf = json.loads(completed.stdout)
    scores = corpus_scores(HYPOTHESES, REFERENCES)
    assert round(scores["bleu"], 4) == cli_bleu["score"]
    assert round(scores["chrf"], 4) == cli_chrf["score"]
    assert scores["bleu_signature"] == cli_bleu["signature"]
    assert 0 < scores["bleu"] < 100


def test_bleu_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        corpus_scores(HYPOTHESES, REFERENCES[:2])


# ## Translating from a run directory


def test_translate_from_run_matches_the_in_memory_model(tmp_path):
    sources = ["zwei rote Hunde .", "ein Haus ."]  # longest first: translate sorts
    model, vocabularies = save_tiny_run(tmp_path, sources, ["one house.", "two red dogs."])
    expected = translate(model, vocabularies, sources)
    # Decoding one at a time gives the same: batching, padding and order do not matter.
    assert [translate(model, vocabularies, [text])[0] for text in sources] == expected
    assert translate_from_run(tmp_path, sources) == expected
    assert len(expected) == 2 and all(isinstance(text, str) for text in expected)


def test_translate_from_run_errors_name_what_is_missing(tmp_path):
    with pytest.raises(UserError, match="model.keras"):
        translate_from_run(tmp_path, ["ein Haus"])
    with pytest.raises(UserError, match="non-empty sentence"):
        translate_from_run(tmp_path, ["  "])


# ## End to end through the command line


def _event_tags(folder) -> set[str]:
    tags = set()
    for path in tf.io.gfile.glob(str(folder / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_train_and_translate_through_the_cli(tmp_path, capsys):
    from common.cli import main

    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    words = {"ein": "one", "zwei": "two", "Haus": "house", "Hund": "dog", "rot": "red"}
    for split, count in (("train", 40), ("validation", 8), ("test", 8)):
        pairs = [rng.choice(list(words), rng.integers(2, 5)) for _ in range(count)]
        for lang, lines in (("de", [" ".join(p) for p in pairs]),
                            ("en", [" ".join(words[w] for w in p) for p in pairs])):
            (folder / f"{lang}.{split}.txt").write_text("\n".join(lines) + "\n")
    code = main(["train", "translation", "--smoke", "--data", str(folder),
                 "--output", str(tmp_path / "runs"), "--run-name", "smoke", "--verbose", "0",
                 "--monitor-every", "0"])
    assert code == 0
    run_dir = tmp_path / "runs" / "translation" / "smoke"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert {"loss", "val_loss", "masked_accuracy", "val_masked_accuracy"} <= set(summary["history"])
    assert 0 <= summary["test_bleu"] <= 100 and 0 <= summary["test_chrf"] <= 100
    assert "tok:13a" in summary["test_bleu_signature"]
    assert summary["test_bleu_uncased"] >= summary["test_bleu"]  # case can only cost matches
    assert "case:lc" in summary["test_bleu_uncased_signature"]
    assert summary["test_sentences_decoded"] == 8
    assert (run_dir / "vocab" / "tokenizer.json").is_file()
    triples = (run_dir / "test_translations.tsv").read_text(encoding="utf-8").splitlines()
    assert len(triples) == 8 and all(line.count("\t") == 2 for line in triples)
    assert "translations" in _event_tags(run_dir / "test")

    capsys.readouterr()
    code = main(["translate", "--run", str(run_dir), "ein Haus .", "zwei Hunde ."])
    printed = capsys.readouterr().out.splitlines()
    assert code == 0 and len(printed) == 2
