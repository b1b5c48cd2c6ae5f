"""Parallel text: TFDS, a `TranslateFolder` folder, or tab-separated pairs -> tf.data.

Every source ends as a list of (source, target) sentence pairs per split. The files
of a local folder are checked line by line first (UTF-8, equal line counts, no empty
line on either side, no empty split), so that a bad file fails with its name and line
before training; then `tfds.folder_dataset.TranslateFolder` reads them. Vocabularies
are built on the training pairs only; pipelines yield
`({"source_ids", "target_ids"}, next_target_ids)` padded per batch with 0.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from common.data import existing_path, load_tfds, read_utf8
from common.domain import DataBundle
from common.errors import UserError
from domains.translation.config import DEFAULT_TFDS_NAME, TranslationConfig
from domains.translation.tokenizer import Encoder, Vocabularies, build_vocabularies

SPLITS = ("train", "validation", "test")
DEFAULT_TFDS_SOURCE = {DEFAULT_TFDS_NAME: "pt"}
ENCODE_BATCH = 1024
SHUFFLE_BUFFER = 50_000
LENGTH_BUCKET_WIDTH = 4
LOCAL_HELP = (
    "a folder of <lang>.<split>.txt files aligned line by line, e.g. "
    "de.train.txt and en.train.txt, or a .tsv file of source<TAB>target lines"
)
_FOLDER_FILE = re.compile(r"^([^.]+)\.([^.]+)\.txt$")

Pairs = tuple[list[str], list[str]]


# ## Load the data


def read_lines(path: Path) -> list[str]:
    """A UTF-8 file's lines, split as TranslateFolder splits them (`splitlines`)."""
    return read_utf8(path).splitlines()


def check_parallel_files(source_path: Path, target_path: Path) -> int:
    """Check that two files hold one sentence per line, aligned; return the count.

    Raises:
        UserError: non-UTF-8 bytes, an empty file, different line counts, or an
            empty line, naming the file and line.
    """
    source_lines = read_lines(source_path)
    target_lines = read_lines(target_path)
    for path, lines in ((source_path, source_lines), (target_path, target_lines)):
        if not lines:
            raise UserError(
                f"{path}: the file is empty, so this split has no sentence pairs. "
                "Add sentences or remove the split's files."
            )
    if len(source_lines) != len(target_lines):
        (short, short_lines), (long, long_lines) = sorted(
            ((source_path, source_lines), (target_path, target_lines)),
            key=lambda item: len(item[1]),
        )
        raise UserError(
            f"{long}:{len(short_lines) + 1}: no matching line in {short}, which "
            f"ends after {len(short_lines)} lines ({long.name} has "
            f"{len(long_lines)}). The files must be aligned line by line."
        )
    for number, (source, target) in enumerate(zip(source_lines, target_lines, strict=True), 1):
        source_empty, target_empty = not source.strip(), not target.strip()
        if source_empty or target_empty:
            path, other = (
                (source_path, target_path) if source_empty else (target_path, source_path)
            )
            partner = "is empty too" if source_empty and target_empty else "is not"
            raise UserError(
                f"{path}:{number}: empty line, and {other.name} line {number} "
                f"{partner}. Every line must hold one sentence in both files; "
                "remove or fill it."
            )
    return len(source_lines)


def _folder_files(folder: Path) -> dict[str, dict[str, Path]]:
    """{split: {lang: path}} for the `<lang>.<split>.txt` files of `folder`."""
    files: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.iterdir()):
        match = _FOLDER_FILE.match(path.name)
        if match and path.is_file():
            lang, split = match.groups()
            files.setdefault(split, {})[lang] = path
    return files


def _pick_source_language(
    cfg: TranslationConfig, languages: set[str], where: Path
) -> str:
    if cfg.source_lang is not None:
        if cfg.source_lang not in languages:
            raise UserError(
                f"{where}: no {cfg.source_lang}.train.txt for --source-lang "
                f"{cfg.source_lang}; languages found: {', '.join(sorted(languages))}."
            )
        return cfg.source_lang
    others = sorted(languages - {cfg.target_lang})
    if len(others) != 1:
        raise UserError(
            f"{where}: cannot tell the source language among "
            f"{', '.join(others) or 'none'}; pass --source-lang."
        )
    return others[0]


def read_translate_folder(cfg: TranslationConfig, folder: Path) -> tuple[dict[str, Pairs], str]:
    """Check and read a TranslateFolder layout; returns ({split: pairs}, source_lang)."""
    files = _folder_files(folder)
    train = files.get("train", {})
    if cfg.target_lang not in train:
        raise UserError(
            f"{folder}: no {cfg.target_lang}.train.txt. Expected {LOCAL_HELP} "
            "(set the languages with --source-lang/--target-lang)."
        )
    source_lang = _pick_source_language(cfg, set(train), folder)
    languages = (source_lang, cfg.target_lang)
    splits = {}
    for split in SPLITS:
        present = files.get(split, {})
        if not present.keys() & set(languages):
            continue
        for lang in languages:
            if lang not in present:
                partner = next(iter(present[other] for other in languages if other in present))
                raise UserError(
                    f"{folder / f'{lang}.{split}.txt'}: missing, but {partner.name} "
                    "exists. Each split needs both languages."
                )
        check_parallel_files(present[source_lang], present[cfg.target_lang])
        splits[split] = present
    # TranslateFolder reads every file of its folder: show it only these.
    with tempfile.TemporaryDirectory(prefix="lrsuite-translate-") as view:
        for present in splits.values():
            for path in present.values():
                os.symlink(path.resolve(), Path(view) / path.name)
        pairs = _read_with_translate_folder(view, list(splits), languages)
    return pairs, source_lang


def _read_with_translate_folder(
    folder: str, splits: list[str], languages: tuple[str, str]
) -> dict[str, Pairs]:
    import tensorflow_datasets as tfds

    builder = tfds.folder_dataset.TranslateFolder(root_dir=folder)
    source_lang, target_lang = languages
    pairs = {}
    for split in splits:
        sources, targets = [], []
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            sources.append(example[source_lang].decode("utf-8"))
            targets.append(example[target_lang].decode("utf-8"))
        pairs[split] = (sources, targets)
    return pairs


def read_tsv_pairs(path: Path) -> Pairs:
    """`source<TAB>target` per line; further columns (e.g. attribution) are ignored.

    Raises:
        UserError: non-UTF-8 bytes, no pairs, a line without a tab or with an empty
            side, naming the file and line.
    """
    sources, targets = [], []
    text = read_utf8(path).removeprefix("\ufeff")
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise UserError(
                f"{path}:{number}: expected source<TAB>target, found no tab."
            )
        source, target = fields[0].strip(), fields[1].strip()
        if not source or not target:
            side = "source (first)" if not source else "target (second)"
            raise UserError(
                f"{path}:{number}: the {side} column is empty. Every line must "
                "hold a sentence on both sides."
            )
        sources.append(source)
        targets.append(target)
    if not sources:
        raise UserError(f"{path}: the file holds no sentence pairs.")
    return sources, targets


def read_tsv_folder(folder: Path) -> dict[str, Pairs]:
    splits = {}
    for split in SPLITS:
        path = folder / f"{split}.tsv"
        if path.is_file():
            splits[split] = read_tsv_pairs(path)
    return splits


def read_local(cfg: TranslationConfig) -> tuple[dict[str, Pairs], str, str]:
    """({split: pairs}, source_lang, description) for `cfg.data`."""
    path = existing_path(cfg.data, "translation data")
    if path.is_file():
        source_lang = cfg.source_lang or "source"
        return {"train": read_tsv_pairs(path)}, source_lang, f"TSV {path}"
    if _folder_files(path).get("train"):
        pairs, source_lang = read_translate_folder(cfg, path)
        return pairs, source_lang, f"TranslateFolder {path}"
    if (path / "train.tsv").is_file():
        return read_tsv_folder(path), cfg.source_lang or "source", f"TSV folder {path}"
    raise UserError(
        f"{path}: no training data found. Expected {LOCAL_HELP}, or a folder with "
        "train.tsv (and optionally validation.tsv, test.tsv)."
    )


def read_tfds(cfg: TranslationConfig) -> tuple[dict[str, Pairs], str, str]:
    import tensorflow_datasets as tfds

    datasets, info = load_tfds(cfg.tfds_name, list(SPLITS), local_help=LOCAL_HELP)
    supervised = tuple(info.supervised_keys or ())
    source_lang = cfg.source_lang or DEFAULT_TFDS_SOURCE.get(
        cfg.tfds_name, supervised[0] if supervised else None
    )
    features = set(info.features.keys())
    for lang in (source_lang, cfg.target_lang):
        if lang not in features:
            raise UserError(
                f"{cfg.tfds_name}: has no language {lang!r}; it has "
                f"{', '.join(sorted(features))}. Pass --source-lang/--target-lang."
            )
    splits = {}
    for split, dataset in zip(SPLITS, datasets, strict=True):
        sources, targets = [], []
        for example in tfds.as_numpy(dataset):
            sources.append(example[source_lang].decode("utf-8"))
            targets.append(example[cfg.target_lang].decode("utf-8"))
        if not sources:
            raise UserError(f"{cfg.tfds_name}: the {split} split is empty.")
        splits[split] = (sources, targets)
    return splits, source_lang, f"TFDS {cfg.tfds_name}"


def carve_missing_splits(
    splits: dict[str, Pairs], fraction: float, seed: int, where: str
) -> dict[str, Pairs]:
    """Take validation and/or test from train (seeded) when the data lacks them."""
    missing = [split for split in ("validation", "test") if split not in splits]
    if not missing:
        return splits
    sources, targets = splits["train"]
    size = max(1, round(len(sources) * fraction))
    if len(sources) - size * len(missing) < 1:
        raise UserError(
            f"{where}: only {len(sources)} training pairs, too few to carve "
            f"{' and '.join(missing)} from. Add pairs or provide those splits."
        )
    order = np.random.default_rng(seed).permutation(len(sources))
    carved = dict(splits)
    for index, split in enumerate(missing):
        chosen = order[index * size : (index + 1) * size]
        carved[split] = ([sources[i] for i in chosen], [targets[i] for i in chosen])
    rest = order[len(missing) * size :]
    carved["train"] = ([sources[i] for i in rest], [targets[i] for i in rest])
    return carved


# ## Prepare the data


def encode_pairs(pairs: Pairs, encoder: Encoder) -> tf.data.Dataset:
    """Unbatched (source_ids, target_ids) with [START]/[END] around the target."""
    dataset = tf.data.Dataset.from_tensor_slices(pairs).batch(ENCODE_BATCH)
    dataset = dataset.map(
        lambda source, target: (encoder.source_ids(source), encoder.target_ids(target)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    # unbatch() forgets the size; Keras then warns "ran out of data" after each pass.
    return dataset.unbatch().apply(tf.data.experimental.assert_cardinality(len(pairs[0])))


def teacher_forcing(source_ids, target_ids):
    """The decoder reads the target up to t and predicts the token at t + 1."""
    inputs = {"source_ids": source_ids, "target_ids": target_ids[:-1]}
    return inputs, target_ids[1:]


def _pair_length(inputs, next_ids):
    return tf.maximum(tf.shape(inputs["source_ids"])[0], tf.shape(next_ids)[0])


def length_buckets(max_length: int) -> list[int]:
    """Bucket boundaries every 4 tokens up to the longest kept sentence."""
    return list(range(LENGTH_BUCKET_WIDTH + 1, max_length + 1, LENGTH_BUCKET_WIDTH))


def make_pipelines(
    splits: dict[str, Pairs], encoder: Encoder, cfg: TranslationConfig
) -> tuple[tf.data.Dataset, tf.data.Dataset, tf.data.Dataset]:
    def batched(dataset, drop_remainder=False):
        return dataset.padded_batch(cfg.batch_size, drop_remainder=drop_remainder)

    train = encode_pairs(splits["train"], encoder).map(teacher_forcing).cache()
    train = train.shuffle(
        min(len(splits["train"][0]), SHUFFLE_BUFFER), seed=cfg.seed
    ).repeat()
    if cfg.bucket_by_length:
        # Sentences of like length share a batch: far less padding to compute on.
        boundaries = length_buckets(max(cfg.max_source_length, cfg.max_target_length))
        train = train.bucket_by_sequence_length(
            _pair_length,
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[cfg.batch_size] * (len(boundaries) + 1),
            drop_remainder=True,
        )
    else:
        train = batched(train, drop_remainder=True)
    train = train.prefetch(tf.data.AUTOTUNE)
    val, test = (
        batched(encode_pairs(splits[name], encoder).map(teacher_forcing).cache())
        .prefetch(tf.data.AUTOTUNE)
        for name in ("validation", "test")
    )
    return train, val, test


def load_data(cfg: TranslationConfig) -> DataBundle:
    if cfg.data is None:
        splits, source_lang, description = read_tfds(cfg)
    else:
        splits, source_lang, description = read_local(cfg)
    splits = carve_missing_splits(
        splits, cfg.validation_fraction, cfg.seed, cfg.data or cfg.tfds_name
    )
    train_sources, train_targets = splits["train"]
    if len(train_sources) < cfg.batch_size:
        raise UserError(
            f"{cfg.data or cfg.tfds_name}: {len(train_sources)} training pairs, fewer "
            f"than one batch of {cfg.batch_size}. Lower --batch-size or add pairs."
        )
    vocabularies = build_vocabularies(
        train_sources,
        train_targets,
        source_size=cfg.source_vocab_size,
        target_size=cfg.target_vocab_size,
        lowercase=cfg.lowercase,
        max_source_length=cfg.max_source_length,
        max_target_length=cfg.max_target_length,
    )
    encoder = Encoder(vocabularies)
    train, val, test = make_pipelines(splits, encoder, cfg)
    counts = ", ".join(f"{name} {len(splits[name][0]):,}" for name in SPLITS)
    return DataBundle(
        train=train,
        make_train=lambda: make_pipelines(splits, encoder, cfg)[0],
        val=val,
        test=test,
        train_examples=len(train_sources),
        description=(
            f"{description}: {source_lang}->{cfg.target_lang} pairs ({counts}); "
            f"vocabularies {len(vocabularies.source):,}/{len(vocabularies.target):,}"
        ),
        info={
            "vocabularies": vocabularies,
            "source_lang": source_lang,
            "target_lang": cfg.target_lang,
            "test_pairs": splits["test"],
            "validation_pairs": splits["validation"],
        },
    )


def vocabularies_of(bundle: DataBundle) -> Vocabularies:
    return bundle.info["vocabularies"]
