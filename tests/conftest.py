"""Shared fixtures: seeding, offline switches, and small generated datasets."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common.cpu_allocator import prefer_pooled_allocator  # noqa: E402

prefer_pooled_allocator()  # as the CLI does, before TensorFlow starts

from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHARED_DATA_ENV = "LRSUITE_SHARED_DATA"


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def shared_data() -> Path:
    """The real datasets of ../shared/data, or a skip that says why."""
    root = os.environ.get(SHARED_DATA_ENV)
    if not root:
        pytest.skip(f"{SHARED_DATA_ENV} is unset: real-data test needs ../shared/data")
    return Path(root)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """The network probe fails (a name that never resolves) and TFDS has nothing prepared."""
    monkeypatch.setenv("LRSUITE_NETWORK_PROBE_HOST", "nonexistent.invalid")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))


@pytest.fixture
def tfds_mocked(monkeypatch, tmp_path):
    """For tfds.testing.mock_data: the probe succeeds, the mocked download is a no-op."""
    monkeypatch.setenv("LRSUITE_NETWORK_PROBE_HOST", "localhost")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))


POSITIVE = ["good", "great", "wonderful", "superb", "moving", "fun", "brilliant", "charming"]
NEGATIVE = ["bad", "awful", "boring", "dull", "tedious", "weak", "clumsy", "lifeless"]
FILLER = ["the", "film", "is", "a", "plot", "story", "acting", "and", "with", "movie", "cast"]


def make_sentiment_rows(count: int, seed: int) -> list[tuple[str, int]]:
    """Short reviews whose label is carried by a few polar words among filler."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        label = i % 2
        polar = POSITIVE if label else NEGATIVE
        words = list(rng.choice(FILLER, size=6)) + list(rng.choice(polar, size=2))
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def write_sentiment_folder(folder: Path, train: int = 240, test: int = 80,
                           validation: int = 0, suffix: str = ".tsv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sep = "," if suffix == ".csv" else "\t"
    for split, count, seed in (("train", train, 1), ("test", test, 2), ("validation", validation, 3)):
        if not count:
            continue
        lines = [f"text{sep}label"] + [f"{t}{sep}{y}" for t, y in make_sentiment_rows(count, seed)]
        (folder / f"{split}{suffix}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def sentiment_folder(tmp_path) -> Path:
    return write_sentiment_folder(tmp_path / "sentiment")
