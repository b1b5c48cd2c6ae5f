"""Word vocabularies built with `keras.layers.TextVectorization`, and their inverse.

Text is standardised (optionally lowercased; punctuation split off as its own token,
except apostrophes and hyphens inside a word, which sacreBLEU's 13a tokenizer keeps
too), then split on whitespace by the layer. Id 0 is padding and id 1 `[UNK]` on both
sides; the target vocabulary also holds `[START]` (2) and `[END]` (3), which no
standardised text can produce because `[` and `]` are split off.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import tensorflow as tf

from common.errors import UserError

PAD_ID = 0
START_TOKEN = "[START]"
END_TOKEN = "[END]"
START_ID = 2
END_ID = 3
VOCAB_FILE = "tokenizer.json"
ADAPT_BATCH = 1024

# RE2 patterns (tf.strings.regex_replace); \p{L}/\p{N} keep non-ASCII letters whole.
_PUNCTUATION = r"([^\p{L}\p{N}\p{M}\s'\-])"
_EDGE_MARK_BEFORE = r"(^|\s)(['\-]+)"
_EDGE_MARK_AFTER = r"(['\-]+)(\s|$)"
# Python patterns for readable output: no space before closing punctuation, none
# after opening brackets.
_SPACE_BEFORE_CLOSING = re.compile(r" ([.,!?;:%)\]}])")
_SPACE_AFTER_OPENING = re.compile(r"([(\[{]) ")


@dataclass(frozen=True)
class Vocabularies:
    """Both vocabularies plus the settings needed to turn text into the same ids."""

    source: list[str]
    target: list[str]
    lowercase: bool
    max_source_length: int
    max_target_length: int

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / VOCAB_FILE
        path.write_text(json.dumps(asdict(self), ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: Path) -> Vocabularies:
        path = folder / VOCAB_FILE
        if not path.is_file():
            raise UserError(
                f"{path}: vocabulary file not found. Translate with a run directory "
                "written by `lrsuite train translation` (it saves vocab/ there)."
            )
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
            return cls(**values)
        except (ValueError, TypeError) as error:
            raise UserError(f"{path}: not a vocabulary file ({error}).") from None


def standardize(text: tf.Tensor, lowercase: bool = False) -> tf.Tensor:
    """Split punctuation off words so that whitespace splitting finds tokens."""
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, _PUNCTUATION, r" \1 ")
    text = tf.strings.regex_replace(text, _EDGE_MARK_BEFORE, r"\1\2 ")
    text = tf.strings.regex_replace(text, _EDGE_MARK_AFTER, r" \1\2")
    return tf.strings.strip(text)


def _vectorizer(lowercase: bool, vocabulary: list[str] | None, max_tokens=None):
    return keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=lambda text: standardize(text, lowercase),
        split="whitespace",
        ragged=True,
        vocabulary=vocabulary,
    )


def build_vocabularies(
    sources: list[str],
    targets: list[str],
    *,
    source_size: int,
    target_size: int,
    lowercase: bool,
    max_source_length: int,
    max_target_length: int,
) -> Vocabularies:
    """Adapt one TextVectorization per side on the training sentences."""
    source_layer = _vectorizer(lowercase, None, max_tokens=source_size)
    source_layer.adapt(tf.data.Dataset.from_tensor_slices(sources).batch(ADAPT_BATCH))
    # Two slots stay free for [START] and [END].
    target_layer = _vectorizer(lowercase, None, max_tokens=target_size - 2)
    target_layer.adapt(tf.data.Dataset.from_tensor_slices(targets).batch(ADAPT_BATCH))
    source_words = [str(word) for word in source_layer.get_vocabulary()]
    target_words = [str(word) for word in target_layer.get_vocabulary()]
    return Vocabularies(
        source=source_words,
        target=target_words[:2] + [START_TOKEN, END_TOKEN] + target_words[2:],
        lowercase=lowercase,
        max_source_length=max_source_length,
        max_target_length=max_target_length,
    )


class Encoder:
    """Sentences -> id tensors, as the model was trained on them."""

    def __init__(self, vocabularies: Vocabularies):
        self.vocabularies = vocabularies
        # TextVectorization adds padding and [UNK] itself.
        self._source = _vectorizer(vocabularies.lowercase, vocabularies.source[2:])
        self._target = _vectorizer(vocabularies.lowercase, vocabularies.target[2:])

    def source_ids(self, sentences: tf.Tensor) -> tf.RaggedTensor:
        """A batch of source strings -> ragged int32 ids, cut to max_source_length."""
        ids = self._source(sentences)[:, : self.vocabularies.max_source_length]
        return tf.cast(ids, tf.int32)

    def target_ids(self, sentences: tf.Tensor) -> tf.RaggedTensor:
        """A batch of target strings -> [START] ids [END], at most max_target_length."""
        words = self._target(sentences)[:, : self.vocabularies.max_target_length - 2]
        words = tf.cast(words, tf.int32)
        rows = words.nrows()
        start = tf.fill([rows, 1], START_ID)
        end = tf.fill([rows, 1], END_ID)
        return tf.concat([start, words, end], axis=1)


def ids_to_text(ids, target_vocabulary: list[str]) -> str:
    """Target ids (after [START]) -> a detokenised sentence, stopping at [END]."""
    words = []
    for token_id in ids:
        token_id = int(token_id)
        if token_id == END_ID:
            break
        if token_id in (PAD_ID, START_ID):
            continue
        words.append(target_vocabulary[token_id])
    return detokenize(" ".join(words))


def detokenize(text: str) -> str:
    """Undo the spacing `standardize` added around closing and opening punctuation."""
    text = _SPACE_BEFORE_CLOSING.sub(r"\1", text)
    return _SPACE_AFTER_OPENING.sub(r"\1", text)
