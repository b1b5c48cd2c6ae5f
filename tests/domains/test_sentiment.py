"""Sentiment: the local reader and its bad inputs, TFDS (mocked and offline), and end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from common import cli
from common.errors import UserError
from domains.sentiment.config import SentimentConfig
from domains.sentiment.data import load_data, read_local, stratified_holdout
from tests.conftest import write_sentiment_folder


def smoke(folder, **overrides):
    return SentimentConfig.smoke(data=str(folder), **overrides)


def test_reads_tsv_and_csv_alike(tmp_path):
    tsv = read_local(write_sentiment_folder(tmp_path / "t", suffix=".tsv"))
    csv = read_local(write_sentiment_folder(tmp_path / "c", suffix=".csv"))
    assert tsv["train"][0] == csv["train"][0]
    assert list(tsv["test"][1]) == list(csv["test"][1])
    assert set(tsv) == {"train", "test"}


def test_csv_quoting_keeps_commas_inside_texts(tmp_path):
    folder = tmp_path / "q"
    folder.mkdir()
    (folder / "train.csv").write_text('text,label\n"slow, but moving",1\nbad,0\n', encoding="utf-8")
    (folder / "test.csv").write_text("text,label\nfine,1\n", encoding="utf-8")
    texts, labels = read_local(folder)["train"]
    assert texts == ["slow, but moving", "bad"] and list(labels) == [1, 0]


def test_a_validation_file_is_used_instead_of_a_holdout(tmp_path):
    folder = write_sentiment_folder(tmp_path / "v", train=64, test=16, validation=24)
    bundle = load_data(smoke(folder))
    assert bundle.train_examples == 64
    assert sum(int(y.shape[0]) for _, y in bundle.val) == 24


def test_holdout_is_stratified_and_reproducible():
    labels = np.array([0] * 80 + [1] * 20)
    keep, held = stratified_holdout(labels, 0.1, seed=7)
    again = stratified_holdout(labels, 0.1, seed=7)
    assert np.array_equal(held, again[1])
    assert sorted(labels[held].tolist()) == [0] * 8 + [1] * 2
    assert not set(keep) & set(held)


@pytest.mark.parametrize("content,needle", [
    (b"review\tlabel\nfine\t1\n", "missing column(s) text"),
    (b"text\tlabel\nfine\t1\nawful\tneg\n", "train.tsv:3: label 'neg' is not 0 or 1"),
    (b"", "the file is empty"),
    (b"text\tlabel\n", "header but no rows"),
    (b"text\tlabel\nfine\t1\ncaf\xe9\t1\n", "train.tsv:3: bytes that are not UTF-8"),
    (b"text\tlabel\nfine\t1\t7\n", "train.tsv:2: expected 2 fields"),
])
def test_bad_files_name_the_file_and_line(tmp_path, content, needle):
    folder = write_sentiment_folder(tmp_path / "bad")
    (folder / "train.tsv").write_bytes(content)
    with pytest.raises(UserError, match=None) as error:
        read_local(folder)
    assert needle in str(error.value) and str(folder / "train.tsv") in str(error.value)


def test_missing_test_split_and_non_folder_are_user_errors(tmp_path):
    folder = write_sentiment_folder(tmp_path / "s")
    (folder / "test.tsv").unlink()
    with pytest.raises(UserError, match="no test.tsv or test.csv"):
        read_local(folder)
    with pytest.raises(UserError, match="expected a folder"):
        read_local(folder / "train.tsv")


@pytest.mark.parametrize("model", ["cnn", "ngram"])
def test_tfds_path_under_mock_data(tfds_mocked, model):
    cfg = SentimentConfig.smoke(model=model)
    with tfds.testing.mock_data(num_examples=40):
        bundle = load_data(cfg)
    x, y = next(iter(bundle.train))
    width = cfg.sequence_length if model == "cnn" else len(bundle.info["vocabulary"])
    assert x.shape == (cfg.batch_size, width)
    assert set(np.unique(y.numpy())) <= {0.0, 1.0}
    assert "imdb_reviews" in bundle.description


def test_offline_tfds_fails_fast_with_the_local_alternative(offline, monkeypatch):
    # Failing fast means never entering TFDS's download, which retries for minutes.
    attempts = []
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        lambda self, *args, **kwargs: attempts.append(self.name))
    with pytest.raises(UserError) as error:
        load_data(SentimentConfig.smoke())
    assert attempts == []
    message = str(error.value)
    assert "could not download 'imdb_reviews'" in message and "--data PATH" in message


def read_scalar_tags(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    return set(events.Tags()["tensors"])


def test_end_to_end_smoke_run_learns_and_writes_its_run_directory(tmp_path, sentiment_folder, capsys):
    argv = ["train", "sentiment", "--smoke", "--data", str(sentiment_folder), "--output",
            str(tmp_path), "--run-name", "smoke", "--lr", "0.01", "--epochs", "4",
            "--steps-per-epoch", "20", "--model", "cnn", "--embedding-dim", "16", "--filters", "8"]
    assert cli.main(argv) == 0
    run_dir = tmp_path / "sentiment" / "smoke"
    assert f"run directory: {run_dir}" in capsys.readouterr().out
    summary = json.loads((run_dir / "summary.json").read_text())
    losses = summary["history"]["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert summary["status"] == "completed" and summary["epochs_run"] == 4
    for key in ("test_accuracy", "test_loss", "val_loss", "val_accuracy", "train_loss",
                "wall_time_s", "examples_per_second", "diagnosis"):
        assert key in summary, key
    assert summary["test_accuracy"] > 0.8  # the polar words carry the label
    config = json.loads((run_dir / "config.json").read_text())
    assert config["learning_rate"] == 0.01 and config["domain"] == "sentiment"
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate",
            "rate/batch_learning_rate"} <= (
        read_scalar_tags(run_dir / "train"))
    assert {"epoch_loss", "epoch_accuracy"} <= read_scalar_tags(run_dir / "validation")
    assert (run_dir / "model.keras").is_file() and (run_dir / "steps.csv").is_file()
    # A second run with the same name gets its own directory.
    assert cli.main(argv) == 0
    assert (tmp_path / "sentiment" / "smoke-2" / "summary.json").is_file()
    assert json.loads((run_dir / "summary.json").read_text()) == summary


def test_same_seed_same_metrics_and_another_seed_differs(tmp_path, sentiment_folder):
    from common.domain import get_domain
    from common.training import run_training

    domain = get_domain("sentiment")

    def run(seed):
        cfg = smoke(sentiment_folder, seed=seed, output=str(tmp_path), verbose=0, monitor_every=0)
        return run_training(domain, cfg, announce=False).summary

    first, again, other = run(1), run(1), run(2)
    assert first["history"] == again["history"]
    assert first["test_loss"] == again["test_loss"]
    assert first["history"]["loss"] != other["history"]["loss"]


def test_ngram_bag_is_multi_hot_over_words_and_bigrams(tmp_path):
    folder = tmp_path / "bag"
    folder.mkdir()
    rows = ["text\tlabel", "a good film\t1", "a bad film\t0", "good good film\t1",
            "bad bad film\t0"]
    for split in ("train", "validation", "test"):
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    bundle = load_data(smoke(folder, model="ngram", vocab_size=50, batch_size=4))
    vocabulary = bundle.info["vocabulary"]
    assert {"good film", "bad film", "a good", "film"} <= set(vocabulary)
    features, labels = next(iter(bundle.test))
    assert features.shape == (4, len(vocabulary)) and features.dtype == "float32"
    first = {vocabulary[i] for i in np.flatnonzero(features.numpy()[0])}
    assert first == {"a", "good", "film", "a good", "good film"}
    # "good good film": each n-gram once (multi-hot, not counts)
    assert set(np.unique(features.numpy()[2])) == {0.0, 1.0}
    assert "a bag of" in bundle.description


def test_ngram_model_learns_saves_and_reloads(tmp_path, sentiment_folder):
    import keras

    argv = ["train", "sentiment", "--smoke", "--data", str(sentiment_folder), "--output",
            str(tmp_path), "--run-name", "bag", "--model", "ngram", "--lr", "0.01",
            "--epochs", "3", "--steps-per-epoch", "20", "--ngram-units", "8"]
    assert cli.main(argv) == 0
    run_dir = tmp_path / "sentiment" / "bag"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["test_accuracy"] > 0.8  # the polar words carry the label
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.name == "sentiment_ngram" and model.input_shape == (None, 200)
    bundle = load_data(smoke(sentiment_folder, model="ngram"))
    assert model.evaluate(bundle.test, verbose=0, return_dict=True)["accuracy"] == \
        pytest.approx(summary["test_accuracy"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["ngram", "cnn"])
def test_real_rotten_tomatoes_beats_the_majority_baseline(tmp_path, shared_data, model):
    from common.domain import get_domain
    from common.training import run_training

    cfg = SentimentConfig(data=str(shared_data / "sentiment" / "rt_polarity"), epochs=2,
                          model=model, learning_rate=1e-3, output=str(tmp_path), verbose=0,
                          monitor_every=0)
    result = run_training(get_domain("sentiment"), cfg, announce=False, save_model=False)
    summary = result.summary
    baseline = 0.5  # 1,066 of 2,132 test sentences are positive
    assert summary["test_accuracy"] > baseline + 0.15, summary["test_accuracy"]
