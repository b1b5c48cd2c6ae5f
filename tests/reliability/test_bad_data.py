"""Bad data in each domain's local format: one line on stderr (`lrsuite: error: ...`) that
names the offending file, exit code 2, no traceback, and nothing written over.

Every command here uses `--run-name X` (and some `--resume`) against the output folder that
already holds a good run X of the same domain; after all of them, X's summary.json,
model.keras and config.json must be byte-identical and no other run directory may exist.

Already tested in tests/domains/ (the reader raises a UserError naming the file; each
domain also has one in-process CLI test of the one-line error), so not repeated here:
- corrupt image (not an image at all, or truncated):
  test_image_classification_data.py::test_folder_bad_inputs_name_the_file_or_folder [corrupt_file],
  test_medical_segmentation.py::test_bad_input_raises_user_error_naming_the_file
  [_unreadable_image, _truncated_mask];
- mask size differs from its image: test_medical_segmentation.py [_bad_mask_size];
- label outside the class list: test_image_classification_data.py::test_npz_bad_contents_name_the_file
  (class_names shorter than the labels), test_sentiment.py::test_bad_files_name_the_file_and_line
  (label 'neg' in a TSV);
- empty split: test_sentiment.py (empty file; header without rows), test_image_classification_data.py
  [empty_class_folder], test_translation_data.py::test_empty_split_names_the_file;
- misaligned parallel text:
  test_translation_data.py::test_different_line_counts_name_the_longer_file_and_line
  and ::test_cli_prints_one_line_and_exits_2_on_bad_data;
- non-UTF-8: test_sentiment.py (TSV), test_translation_data.py (a TSV of pairs, and
  check_parallel_files alone).
Written here, each through the real command: a class folder in test/ that train/ lacks; an
.npz with an empty test split; TIFF data in a .png (PIL read it, TensorFlow's decoder did not:
training started and crashed with a traceback); a PNG with a damaged chunk length (PIL raised
SyntaxError: a traceback); an empty val/ split; a CSV label out of range; a CSV quote that never
closes (csv.Error past its field-size limit: a traceback); a non-UTF-8 line in a TranslateFolder
file; an empty test.tsv.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import write_sentiment_folder
from tests.domains.test_image_classification_data import write_folder, write_npz
from tests.domains.test_medical_segmentation_fixtures import make_folder
from tests.reliability.conftest import (
    DOMAINS,
    GOOD_RUN,
    TINY,
    run_all,
    snapshot,
    tail,
    write_demo_data,
)


@dataclass(frozen=True)
class Case:
    domain: str
    make: Callable[[Path], tuple[Path, Path, str]]  # folder -> (--data, culprit, needle)
    # Run it as `--resume --run-name X`: X was trained on other data, so the resume is
    # refused for its --data before the bad file is read (one line naming the field).
    resume: bool = False


# ## image_classification


def image_folder_class_not_in_train(folder):
    root = write_folder(folder / "images")
    (root / "test" / "horse").mkdir()
    Image.new("RGB", (6, 7), (9, 9, 9)).save(root / "test" / "horse" / "0.png")
    return root, root / "test", "extra ['horse']"


def image_npz_empty_test_split(folder):
    path = write_npz(folder / "empty.npz", x_test=np.zeros((0, 8, 8, 3), np.uint8),
                     y_test=np.zeros(0, np.int64))
    return path, path, "x_test has shape (0, 8, 8, 3)"


def image_folder_tiff_named_png(folder):
    # PIL reads TIFF whatever the name; TensorFlow's decoder, which training uses, does not.
    root = write_folder(folder / "images")
    path = root / "train" / "dog" / "2.png"
    Image.new("RGB", (6, 7), (100, 100, 100)).save(path, format="TIFF")
    return root, path, "TIFF"


# ## medical_segmentation


def medical_broken_png_chunk(folder):
    # A damaged chunk length: PIL then reads a chunk name from inside the image data.
    root = make_folder(folder / "data", {"train": 4, "test": 2})
    path = root / "train" / "images" / "01.png"
    data = bytearray(path.read_bytes())
    data[data.index(b"IDAT") - 2] = 0
    path.write_bytes(bytes(data))
    return root, path, "unreadable image"


def medical_empty_val_split(folder):
    root = make_folder(folder / "data", {"train": 4, "test": 2})
    for sub in ("images", "masks"):
        (root / "val" / sub).mkdir(parents=True)
    return root, root / "val" / "images", "no images"


# ## sentiment


def sentiment_csv_label_outside(folder):
    root = write_sentiment_folder(folder / "reviews", train=40, test=10, suffix=".csv")
    lines = (root / "test.csv").read_text(encoding="utf-8").splitlines()
    lines[2] = '"slow, but moving",2'  # quoted text with a comma: the CSV reader's path
    (root / "test.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root, root / "test.csv", "test.csv:3: label '2' is not 0 or 1"


def sentiment_csv_unclosed_quote(folder):
    # A quote that opens a text and never closes swallows the rest of the file into one
    # field; on a file of realistic size that passes the csv module's field limit.
    root = write_sentiment_folder(folder / "reviews", train=40, test=10, suffix=".csv")
    rows = (root / "train.csv").read_text(encoding="utf-8").splitlines()
    rows[2] = '"an unclosed quote, then more,1'
    rows += [f"filler review number {i} with some words,{i % 2}" for i in range(4000)]
    (root / "train.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root, root / "train.csv", "field larger than field limit"


# ## translation


def translation_non_utf8_line(folder):
    root = write_demo_data("translation", folder / "pairs")
    path = root / "en.validation.txt"
    lines = path.read_bytes().split(b"\n")
    lines[1] = "gr\u00f6\u00dfer hund".encode("latin-1")
    path.write_bytes(b"\n".join(lines))
    return root, path, "en.validation.txt:2: bytes that are not UTF-8"


def translation_tsv_folder_empty_test_split(folder):
    root = folder / "tsv"
    root.mkdir()
    pairs = [f"hund {i} katze\tcat {i} dog" for i in range(40)]
    (root / "train.tsv").write_text("\n".join(pairs) + "\n", encoding="utf-8")
    (root / "test.tsv").write_text("\n", encoding="utf-8")
    return root, root / "test.tsv", "holds no sentence pairs"


CASES = {
    "image-folder-class-not-in-train": Case("image_classification",
                                            image_folder_class_not_in_train),
    "image-npz-empty-test-split": Case("image_classification", image_npz_empty_test_split,
                                       resume=True),
    "image-folder-tiff-named-png": Case("image_classification", image_folder_tiff_named_png),
    "medical-broken-png-chunk": Case("medical_segmentation", medical_broken_png_chunk),
    "medical-empty-val-split": Case("medical_segmentation", medical_empty_val_split,
                                    resume=True),
    "sentiment-csv-label-outside": Case("sentiment", sentiment_csv_label_outside),
    "sentiment-csv-unclosed-quote": Case("sentiment", sentiment_csv_unclosed_quote,
                                         resume=True),
    "translation-non-utf8-line": Case("translation", translation_non_utf8_line,
                                      resume=True),
    "translation-tsv-folder-empty-test-split": Case("translation",
                                                    translation_tsv_folder_empty_test_split),
}


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory, good_runs):
    """Every bad command, against the output folder holding the good runs X."""
    made = {name: case.make(tmp_path_factory.mktemp(name)) for name, case in CASES.items()}
    return made, run_all({
        name: ["train", case.domain, "--data", made[name][0], "--output", good_runs.output,
               "--run-name", GOOD_RUN, *TINY, *(["--resume"] if case.resume else [])]
        for name, case in CASES.items()
    })


@pytest.mark.parametrize("name", CASES)
def test_bad_data_is_one_line_naming_the_file_and_exit_2(bad_runs, name):
    made, results = bad_runs
    _, culprit, needle = made[name]
    result = results[name]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, tail(result)
    assert len(lines) == 1, tail(result)
    assert lines[0].startswith("lrsuite: error: "), tail(result)
    if CASES[name].resume:
        assert "--resume" in lines[0] and "data (run: " in lines[0], lines[0]
    else:
        assert str(culprit) in lines[0] and needle in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("domain", DOMAINS)
def test_bad_data_writes_nothing_over_the_run_of_the_same_name(bad_runs, good_runs, domain):
    # Both ways were tried in this domain: a new run named X, and resuming X.
    assert {case.resume for case in CASES.values() if case.domain == domain} == {False, True}
    run_dir = good_runs.run_dirs[domain]
    assert [p.name for p in run_dir.parent.iterdir()] == [GOOD_RUN]  # no X-2
    assert snapshot(run_dir) == good_runs.before[domain]
