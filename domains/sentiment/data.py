"""Sentiment data: IMDB reviews from TFDS, or a local folder of TSV/CSV files.

Local format: a folder with `train.tsv` and `test.tsv` (or `.csv`), optionally
`validation.tsv`, each with a header naming the columns `text` and `label` (other
columns are ignored), labels 0 (negative) or 1 (positive), UTF-8. TSV is read without
quoting; CSV with standard quoting. Without a validation file, `val_fraction` of train
is held out, stratified, with the run's seed.

Texts are encoded once, before the pipeline (TextVectorization adapted on the training
texts only), so each training step reads cached tensors: token ids for the sequence
models (cnn, bilstm), or for the n-gram bag a sparse multi-hot vector over the most
frequent words and n-grams, made dense one batch at a time.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from common.data import existing_path, load_tfds, read_table
from common.domain import DataBundle
from common.errors import UserError

DATA_FORMAT = (
    "a folder with train.tsv and test.tsv, optionally validation.tsv (or .csv), UTF-8, "
    "header naming the columns text and label, labels 0 (negative) / 1 (positive); TSV "
    "unquoted, CSV with standard quoting. Without validation, val_fraction of train is "
    "held out (stratified, seeded)."
)
LOCAL_HELP = "a folder with train.tsv and test.tsv (header text<TAB>label, labels 0/1)"
SPLITS = ("train", "validation", "test")
MAX_AUTO_LENGTH = 400


def _split_file(folder: Path, split: str) -> Path | None:
    for suffix in (".tsv", ".csv"):
        path = folder / f"{split}{suffix}"
        if path.is_file():
            return path
    return None


def read_split(path: Path) -> tuple[list[str], np.ndarray]:
    """Texts and 0/1 labels of one TSV/CSV file; bad rows raise UserError with file:line."""
    rows = read_table(path, ("text", "label"))
    texts, labels = [], []
    for row in rows:
        label = row["label"].strip()
        if label not in ("0", "1"):
            raise UserError(
                f"{path}:{row['_line']}: label {label!r} is not 0 or 1 "
                "(0 = negative, 1 = positive)."
            )
        texts.append(row["text"])
        labels.append(int(label))
    return texts, np.asarray(labels, dtype="int32")


def read_local(folder: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    folder = existing_path(folder, "sentiment data folder")
    if not folder.is_dir():
        raise UserError(f"{folder}: expected a folder holding train.tsv and test.tsv ({LOCAL_HELP}).")
    splits = {}
    for split in SPLITS:
        path = _split_file(folder, split)
        if path is None:
            if split == "validation":
                continue
            raise UserError(f"{folder}: no {split}.tsv or {split}.csv ({LOCAL_HELP}).")
        splits[split] = read_split(path)
    return splits


def read_tfds(name: str) -> dict[str, tuple[list[str], np.ndarray]]:
    (train, test), _ = load_tfds(name, ["train", "test"], local_help=LOCAL_HELP)
    out = {}
    for split, dataset in (("train", train), ("test", test)):
        texts, labels = [], []
        for example in dataset.as_numpy_iterator():
            texts.append(example["text"].decode("utf-8"))
            labels.append(int(example["label"]))
        out[split] = (texts, np.asarray(labels, dtype="int32"))
    return out


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): `fraction` of each class held out, reproducibly."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        count = max(1, round(len(members) * fraction))
        held.extend(members[:count])
        keep.extend(members[count:])
    return rng.permutation(np.asarray(keep)), np.sort(np.asarray(held))


def clean_text(text: str) -> str:
    """IMDB keeps `<br />` line-break markup; it is not a word."""
    return re.sub(r"<br\s*/?>", " ", text)


def lower_and_split_punctuation(texts):
    """Lower-case and put spaces around punctuation, so that '!' or '?' are tokens of
    their own (as in Kim's preprocessing) instead of being glued to or stripped from words."""
    import tensorflow as tf

    texts = tf.strings.lower(texts)
    texts = tf.strings.regex_replace(texts, r"([!?.,;:()\"])", r" \1 ")
    return tf.strings.regex_replace(texts, r"\s+", " ")


def _adapted_vectorizer(texts: list[str], standardize: str, **layer_args):
    import keras

    if standardize == "lower_and_split_punctuation":
        standardize = lower_and_split_punctuation
    vectorizer = keras.layers.TextVectorization(
        standardize=None if standardize == "none" else standardize, **layer_args)
    vectorizer.adapt(texts, batch_size=1024)
    return vectorizer


def build_vectorizer(texts: list[str], vocab_size: int, sequence_length: int,
                     standardize: str = "lower_and_split_punctuation"):
    return _adapted_vectorizer(texts, standardize, max_tokens=vocab_size, output_mode="int",
                               output_sequence_length=sequence_length)


def build_ngram_vectorizer(texts: list[str], vocab_size: int, ngrams: int,
                           standardize: str = "lower_and_split_punctuation"):
    """Multi-hot over the `vocab_size` most frequent 1- to `ngrams`-grams (sparse)."""
    return _adapted_vectorizer(texts, standardize, max_tokens=vocab_size, ngrams=ngrams,
                               output_mode="multi_hot", sparse=True)


def auto_length(texts: list[str]) -> int:
    lengths = [len(t.split()) for t in texts]
    return int(min(MAX_AUTO_LENGTH, max(8, np.percentile(lengths, 95))))


def load_data(cfg) -> DataBundle:
    import keras
    import tensorflow as tf

    if cfg.data:
        splits = read_local(Path(cfg.data))
        source = f"{Path(cfg.data).name} (local TSV/CSV)"
    else:
        splits = read_tfds(cfg.tfds_name)
        source = f"{cfg.tfds_name} (tensorflow-datasets)"
    train_texts, train_labels = splits["train"]
    if "validation" in splits:
        val_texts, val_labels = splits["validation"]
    else:
        keep, held = stratified_holdout(train_labels, cfg.val_fraction, cfg.seed)
        val_texts = [train_texts[i] for i in held]
        val_labels = train_labels[held]
        train_texts = [train_texts[i] for i in keep]
        train_labels = train_labels[keep]
    test_texts, test_labels = splits["test"]
    train_texts = [clean_text(t) for t in train_texts]
    bag = cfg.model == "ngram"
    if bag:
        length = 0  # a bag has no length
        vectorizer = build_ngram_vectorizer(train_texts, cfg.vocab_size, cfg.ngrams,
                                            cfg.standardize)
    else:
        length = cfg.sequence_length or auto_length(train_texts)
        vectorizer = build_vectorizer(train_texts, cfg.vocab_size, length, cfg.standardize)

    def encode(texts: list[str]):
        encoded = vectorizer(tf.constant([clean_text(t) for t in texts]))
        # convert_to_numpy: the layer returns the backend's array type (JAX too).
        return encoded if bag else keras.ops.convert_to_numpy(encoded)

    def densify(features, labels):
        return tf.cast(tf.sparse.to_dense(features), "float32"), labels

    def batched(texts, labels, *, training: bool):
        dataset = tf.data.Dataset.from_tensor_slices((encode(texts), labels.astype("float32")))
        dataset = dataset.cache()
        if training:
            dataset = dataset.shuffle(len(labels), seed=cfg.seed).repeat()
            dataset = dataset.batch(cfg.batch_size, drop_remainder=True)
        else:
            dataset = dataset.batch(max(cfg.batch_size, 256))
        if bag:
            dataset = dataset.map(densify, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    shape = (f"a bag of {vectorizer.vocabulary_size()} 1- to {cfg.ngrams}-grams" if bag
             else f"{length} tokens")
    description = (f"{source}: {len(train_labels)} train / {len(val_labels)} val / "
                   f"{len(test_labels)} test texts, {shape}")
    def make_train():
        return batched(train_texts, train_labels, training=True)

    return DataBundle(
        train=make_train(),
        make_train=make_train,
        val=batched(val_texts, val_labels, training=False),
        test=batched(test_texts, test_labels, training=False),
        train_examples=len(train_labels),
        description=description,
        info={
            "vocabulary": vectorizer.get_vocabulary(),
            "sequence_length": length,
            "majority_share": float(max(np.mean(test_labels), 1 - np.mean(test_labels))),
        },
    )
