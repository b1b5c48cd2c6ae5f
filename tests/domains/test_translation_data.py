"""Translation data: config checks, readers (TranslateFolder, TSV, TFDS) and bad input."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pytest
import tensorflow as tf

from common.errors import UserError
from domains.translation.config import TranslationConfig
from domains.translation.data import (
    carve_missing_splits,
    check_parallel_files,
    length_buckets,
    load_data,
    read_tsv_pairs,
)
from domains.translation.tokenizer import (
    END_ID,
    START_ID,
    Encoder,
    Vocabularies,
    build_vocabularies,
    detokenize,
    ids_to_text,
    standardize,
)

GERMAN = ["ein", "zwei", "drei", "Haus", "Hund", "rot", "blau", "groß"]
ENGLISH = ["one", "two", "three", "house", "dog", "red", "blue", "big"]


def make_pairs(count: int, seed: int) -> tuple[list[str], list[str]]:
    """Word-for-word 'translations' between two made-up vocabularies."""
    rng = np.random.default_rng(seed)
    sources, targets = [], []
    for _ in range(count):
        words = rng.integers(0, len(GERMAN), rng.integers(2, 6))
        sources.append(" ".join(GERMAN[i] for i in words) + " .")
        targets.append(" ".join(ENGLISH[i] for i in words) + ".")
    return sources, targets


def write_folder(folder, sizes=None, languages=("de", "en")):
    sizes = sizes or {"train": 40, "validation": 8, "test": 8}
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (split, count) in enumerate(sizes.items()):
        sources, targets = make_pairs(count, seed)
        for lang, lines in zip(languages, (sources, targets), strict=True):
            (folder / f"{lang}.{split}.txt").write_text(
                "\n".join(lines) + "\n", encoding="utf-8"
            )
    return folder


def smoke(tmp_path, **overrides):
    return TranslationConfig.smoke(data=str(tmp_path), **overrides)


# ## Config


def test_config_defaults_are_the_transformer_recipe():
    cfg = TranslationConfig()
    assert cfg.domain == "translation"
    assert cfg.schedule == "transformer"
    assert cfg.warmup_epochs > 0
    assert cfg.tfds_name == "ted_hrlr_translate/pt_to_en"
    assert cfg.target_lang == "en"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model_dim": 30, "num_heads": 4}, "model_dim must be a multiple of num_heads"),
        ({"dropout": 1.0}, "Received: dropout=1.0"),
        ({"label_smoothing": -0.1}, "Received: label_smoothing=-0.1"),
        ({"max_target_length": 2}, "Received: max_target_length=2"),
        ({"source_lang": "en"}, "source_lang and target_lang must differ"),
        ({"target_lang": "e.n"}, "Received: target_lang='e.n'"),
        ({"validation_fraction": 0.7}, "Received: validation_fraction=0.7"),
    ],
)
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        TranslationConfig.smoke(**overrides)


# ## Tokenizer


def test_standardize_splits_punctuation_but_keeps_words_whole():
    text = tf.constant(["Ein Mädchen's (rotes) T-Shirt, 'so' -"])
    tokens = standardize(text).numpy()[0].decode("utf-8").split()
    assert tokens == [
        "Ein", "Mädchen's", "(", "rotes", ")", "T-Shirt", ",", "'", "so", "'", "-",
    ]
    assert standardize(text, lowercase=True).numpy()[0].decode().startswith("ein mädchen's")


def test_detokenize_reattaches_punctuation():
    assert detokenize("A dog ( brown ) runs , fast .") == "A dog (brown) runs, fast."


def test_vocabularies_reserve_special_ids_and_round_trip(tmp_path):
    sources, targets = make_pairs(30, seed=0)
    vocabularies = build_vocabularies(
        sources, targets, source_size=50, target_size=50, lowercase=False,
        max_source_length=4, max_target_length=5,
    )
    assert vocabularies.target[START_ID] == "[START]"
    assert vocabularies.target[END_ID] == "[END]"
    assert vocabularies.source[:2] == ["", "[UNK]"]
    vocabularies.save(tmp_path)
    assert Vocabularies.load(tmp_path) == vocabularies

    encoder = Encoder(vocabularies)
    ids = encoder.target_ids(tf.constant(["two red dog house blue ."])).to_list()[0]
    # [START] + 3 words (cut to max_target_length) + [END].
    assert len(ids) == 5 and ids[0] == START_ID and ids[-1] == END_ID
    assert ids_to_text(ids[1:], vocabularies.target) == "two red dog"
    source = encoder.source_ids(tf.constant(["ein zwei drei Haus Hund"])).to_list()[0]
    assert len(source) == 4 and 1 not in source  # known words, cut to 4


def test_vocabulary_load_names_the_missing_file(tmp_path):
    with pytest.raises(UserError, match="tokenizer.json"):
        Vocabularies.load(tmp_path)


# ## Local data: TranslateFolder layout and TSV


def test_translate_folder_reads_aligned_pairs_and_ignores_other_files(tmp_path):
    folder = write_folder(tmp_path / "data")
    (folder / "SHA256SUMS").write_text("abc  ./de.train.txt\n")  # TranslateFolder alone chokes
    bundle = load_data(smoke(folder))
    sources, references = bundle.info["test_pairs"]
    assert (sources, references) == make_pairs(8, seed=2)
    assert bundle.info["source_lang"] == "de"
    assert bundle.train_examples == 40
    assert "TranslateFolder" in bundle.description

    inputs, labels = next(iter(bundle.train))
    assert inputs["source_ids"].shape[0] == 4  # batch_size, drop_remainder
    target_ids = inputs["target_ids"].numpy()
    labels = labels.numpy()
    assert (target_ids[:, 0] == START_ID).all()
    # Labels are the decoder input shifted by one: teacher forcing.
    np.testing.assert_array_equal(target_ids[:, 1:], labels[:, :-1] * (target_ids[:, 1:] != 0))
    assert ((labels == END_ID).sum(axis=1) == 1).all()


def _varied_length_folder(folder):
    """Sentences of 1 to 16 words, so that random batches carry much padding."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 17, 400)
    sources = [" ".join(GERMAN[i % 8] for i in range(n)) for n in lengths]
    targets = [" ".join(ENGLISH[i % 8] for i in range(n)) for n in lengths]
    folder.mkdir(parents=True)
    for lang, lines in (("de", sources), ("en", targets)):
        (folder / f"{lang}.train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _padding_share(bundle, batches: int) -> float:
    padded = real = 0
    for inputs, labels in bundle.train.take(batches):
        assert inputs["source_ids"].shape[0] == 8  # every batch full, bucketed or not
        for ids in (inputs["source_ids"].numpy(), labels.numpy()):
            padded += ids.size
            real += int((ids != 0).sum())
    return 1 - real / padded


def test_length_buckets_cut_padding_and_keep_full_batches(tmp_path):
    folder = _varied_length_folder(tmp_path / "data")
    overrides = {"batch_size": 8, "max_source_length": 20, "max_target_length": 20}
    bucketed = load_data(smoke(folder, **overrides))
    plain = load_data(smoke(folder, bucket_by_length=False, **overrides))
    bucketed_share, plain_share = _padding_share(bucketed, 30), _padding_share(plain, 30)
    assert bucketed_share < 0.2 < plain_share


def test_length_bucket_boundaries_cover_the_longest_sentence():
    assert length_buckets(40) == [5, 9, 13, 17, 21, 25, 29, 33, 37]
    assert length_buckets(4) == []


def test_val_and_test_are_carved_from_train_reproducibly(tmp_path):
    folder = write_folder(tmp_path / "data", sizes={"train": 100})
    first = load_data(smoke(folder, validation_fraction=0.1))
    assert first.train_examples == 80
    assert len(first.info["test_pairs"][0]) == len(first.info["validation_pairs"][0]) == 10
    other_seed = load_data(smoke(folder, validation_fraction=0.1, seed=7))
    assert other_seed.info["test_pairs"] != first.info["test_pairs"]


def test_carved_splits_partition_train_and_keep_pairs_together():
    sources = [f"s{i}" for i in range(50)]
    targets = [f"t{i}" for i in range(50)]
    splits = carve_missing_splits({"train": (sources, targets)}, 0.1, 3, "x")
    assert carve_missing_splits({"train": (sources, targets)}, 0.1, 3, "x") == splits
    together = []
    for name in ("train", "validation", "test"):
        split_sources, split_targets = splits[name]
        assert [s[1:] for s in split_sources] == [t[1:] for t in split_targets]
        together += split_sources
    assert sorted(together) == sorted(sources)
    assert len(splits["test"][0]) == 5


def test_carving_needs_enough_pairs():
    with pytest.raises(UserError, match="too few to carve"):
        carve_missing_splits({"train": (["a"], ["b"])}, 0.1, 0, "tiny.tsv")


def test_source_language_is_inferred_or_must_be_named(tmp_path):
    folder = write_folder(tmp_path / "data")
    sources, _ = make_pairs(40, seed=0)
    (folder / "fr.train.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="pass --source-lang"):
        load_data(smoke(folder))
    bundle = load_data(smoke(folder, source_lang="de"))
    assert bundle.info["source_lang"] == "de"


def test_tsv_file_of_pairs(tmp_path):
    sources, targets = make_pairs(60, seed=3)
    path = tmp_path / "pairs.tsv"
    lines = [f"{s}\t{t}\tCC-BY attribution" for s, t in zip(sources, targets, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert read_tsv_pairs(path) == (sources, targets)
    bundle = load_data(smoke(path))
    assert bundle.train_examples == 60 - 2 * 3  # 5% each for validation and test
    assert "TSV" in bundle.description


# ## Bad input: one UserError naming the file and line


def _break(folder, name, content: bytes):
    (folder / name).write_bytes(content)


def test_different_line_counts_name_the_longer_file_and_line(tmp_path):
    folder = write_folder(tmp_path / "data")
    lines = (folder / "en.train.txt").read_text(encoding="utf-8").splitlines()
    _break(folder, "en.train.txt", ("\n".join(lines[:-2]) + "\n").encode())
    with pytest.raises(UserError, match=r"de\.train\.txt:39: no matching line in .*en\.train\.txt"):
        load_data(smoke(folder))


@pytest.mark.parametrize("side, other", [("en", "de"), ("de", "en")])
def test_empty_line_on_one_side_names_file_and_line(tmp_path, side, other):
    folder = write_folder(tmp_path / "data")
    lines = (folder / f"{side}.validation.txt").read_text(encoding="utf-8").splitlines()
    lines[2] = "  "
    _break(folder, f"{side}.validation.txt", ("\n".join(lines) + "\n").encode())
    with pytest.raises(
        UserError,
        match=rf"{side}\.validation\.txt:3: empty line, and {other}\.validation\.txt line 3 is not",
    ):
        load_data(smoke(folder))


def test_empty_split_names_the_file(tmp_path):
    folder = write_folder(tmp_path / "data")
    _break(folder, "de.test.txt", b"")
    _break(folder, "en.test.txt", b"")
    with pytest.raises(UserError, match=r"de\.test\.txt: the file is empty"):
        load_data(smoke(folder))


def test_non_utf8_names_file_and_line(tmp_path):
    folder = write_folder(tmp_path / "data")
    _break(folder, "de.train.txt", "ein Haus\nzwei H\xe4user\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"de\.train\.txt:2: bytes that are not UTF-8"):
        check_parallel_files(folder / "de.train.txt", folder / "en.train.txt")


def test_split_with_one_language_only_names_the_missing_file(tmp_path):
    folder = write_folder(tmp_path / "data")
    (folder / "en.test.txt").unlink()
    with pytest.raises(UserError, match=r"en\.test\.txt: missing, but de\.test\.txt exists"):
        load_data(smoke(folder))


def test_folder_without_training_files(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(UserError, match="no training data found"):
        load_data(smoke(tmp_path / "data"))
    with pytest.raises(UserError, match="not found"):
        load_data(smoke(tmp_path / "missing"))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"ein Haus\tone house\nzwei Hunde\n", r"pairs\.tsv:2: expected source<TAB>target"),
        (b"ein Haus\tone house\n\ttwo dogs\n", r"pairs\.tsv:2: the source \(first\) column is empty"),
        (b"ein Haus\t \n", r"pairs\.tsv:1: the target \(second\) column is empty"),
        (b"ein Haus\tone house\nH\xe4user\thouses\n", r"pairs\.tsv:2: bytes that are not UTF-8"),
        (b"\n\n", r"pairs\.tsv: the file holds no sentence pairs"),
    ],
)
def test_bad_tsv_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_tsv_pairs(path)


def test_cli_prints_one_line_and_exits_2_on_bad_data(tmp_path, capsys):
    from common.cli import main

    folder = write_folder(tmp_path / "data")
    _break(folder, "en.train.txt", b"one\n")
    code = main(["train", "translation", "--smoke", "--data", str(folder),
                 "--output", str(tmp_path / "runs")])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert len(error.splitlines()) == 1
    assert "de.train.txt:2" in error and "en.train.txt" in error
    assert not (tmp_path / "runs").exists()


# ## TFDS


def test_tfds_default_under_mock_data(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    monkeypatch.setenv("LRSUITE_NETWORK_PROBE_HOST", "localhost")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    with tfds.testing.mock_data(num_examples=12):
        bundle = load_data(TranslationConfig.smoke())
    assert bundle.info["source_lang"] == "pt"
    assert bundle.info["target_lang"] == "en"
    assert "ted_hrlr_translate/pt_to_en" in bundle.description
    assert len(bundle.info["test_pairs"][0]) == 12
    inputs, labels = next(iter(bundle.train))
    assert inputs["source_ids"].shape[0] == 4 and labels.shape[0] == 4


def test_tfds_offline_is_a_user_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LRSUITE_NETWORK_PROBE_HOST", "nonexistent.invalid")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    with pytest.raises(UserError, match="ted_hrlr_translate/pt_to_en.*--data"):
        load_data(TranslationConfig.smoke())
