"""The bad-input matrix: one row per case, through `lrsuite`'s own entry point.

Each row is a command (flags, or local data made bad in one way), the exit code it must
give, words its one line must hold (the file, field or value, and what to do), and the
promise that nothing already written changes: every row runs against an output folder
that holds a finished run X of the same domain, and no row may alter X or add a run.

The rows run in this process through `common.cli.main` (the same code as the console
script, without TensorFlow's start-up per row), which keeps 50 cases cheap; the
subprocess checks of test_bad_data.py cover what only a whole process shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.cli import main
from tests.conftest import write_sentiment_folder
from tests.domains.test_image_classification_data import write_folder, write_npz
from tests.domains.test_medical_segmentation_fixtures import make_folder
from tests.reliability.conftest import GOOD_RUN, TINY, snapshot, write_demo_data

Maker = Callable[[Path], Path]  # a folder to write into -> the --data path


@dataclass(frozen=True)
class Row:
    argv: tuple[str, ...]  # after the command; {data} and {out} are filled in
    words: tuple[str, ...]  # each must appear in the one line
    data: Maker | None = None  # bad local data, written fresh for the row
    exit: int = 2
    domain: str = "sentiment"
    extra: tuple[str, ...] = field(default=())
    named: bool = True  # add --run-name X (the finished run), unless the row names one


def _sentiment(edit: Callable[[list[str]], list[str]], name: str = "train.tsv") -> Maker:
    def make(folder: Path) -> Path:
        root = write_sentiment_folder(folder / "reviews", train=40, test=10,
                                      suffix=Path(name).suffix)
        path = root / name
        path.write_text("\n".join(edit(path.read_text(encoding="utf-8").splitlines())) + "\n",
                        encoding="utf-8")
        return root
    return make


def _sentiment_bytes(folder: Path) -> Path:
    root = write_sentiment_folder(folder / "reviews", train=40, test=10)
    path = root / "train.tsv"
    path.write_bytes(path.read_bytes().replace(b"film", "f\u00eflm".encode("latin-1"), 1))
    return root


def _replace(index: int, text: str):
    def edit(lines: list[str]) -> list[str]:
        lines[index] = text
        return lines
    return edit


def _unclosed_quote_then_three_fields(lines: list[str]) -> list[str]:
    lines[1] = '"an unclosed quote, and more,1'  # opens on line 2 ...
    lines[8] = 'a,row,with three fields'  # ... and is closed by nothing: one long record
    return lines


def _image_one_class(folder: Path) -> Path:
    root = folder / "images"
    for split in ("train", "test"):
        (root / split / "cat").mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (6, 7), (i * 20, 0, 0)).save(root / split / "cat" / f"{i}.png")
    return root


def _image_folder_missing_class(folder: Path) -> Path:
    root = write_folder(folder / "images")
    for path in (root / "test" / "dog").iterdir():
        path.unlink()
    (root / "test" / "dog").rmdir()
    return root


def _npz(**changes) -> Maker:
    return lambda folder: write_npz(folder / "data.npz", **changes)


def _npz_one_class(folder: Path) -> Path:
    return write_npz(folder / "data.npz", classes=1)


def _npz_test_class_unseen(folder: Path) -> Path:
    path = write_npz(folder / "data.npz", classes=2)
    with np.load(path) as stored:
        arrays = dict(stored)
    arrays["y_test"][0] = 1
    arrays["y_train"][:] = 0
    arrays["y_train"][1] = 2  # train: classes 0 and 2; test also holds 1
    arrays["class_names"] = np.array(["a", "b", "c"])
    np.savez(path, **arrays)
    return path


def _not_a_npz(folder: Path) -> Path:
    path = folder / "data.npz"
    path.write_bytes(b"not a zip at all")
    return path


def _medical(edit: Callable[[Path], None]) -> Maker:
    def make(folder: Path) -> Path:
        root = make_folder(folder / "data", {"train": 4, "test": 2})
        edit(root)
        return root
    return make


def _mask_size(root: Path) -> None:
    Image.new("L", (10, 10), 0).save(root / "train" / "masks" / "00.png")


def _mask_grey(root: Path) -> None:
    path = root / "train" / "masks" / "01.png"
    with Image.open(path) as mask:
        size = mask.size
    Image.new("L", size, 128).save(path)


def _mask_missing(root: Path) -> None:
    (root / "train" / "masks" / "02.png").unlink()


def _no_masks_folder(root: Path) -> None:
    for path in (root / "test" / "masks").iterdir():
        path.unlink()
    (root / "test" / "masks").rmdir()


def _translation(edit: Callable[[Path], None]) -> Maker:
    def make(folder: Path) -> Path:
        root = write_demo_data("translation", folder / "pairs")
        edit(root)
        return root
    return make


def _drop_last_line(root: Path) -> None:
    path = root / "en.train.txt"
    path.write_text("\n".join(path.read_text(encoding="utf-8").splitlines()[:-1]) + "\n",
                    encoding="utf-8")


def _empty_split(root: Path) -> None:
    (root / "de.test.txt").write_text("", encoding="utf-8")
    (root / "en.test.txt").write_text("", encoding="utf-8")


def _latin1(root: Path) -> None:
    path = root / "de.train.txt"
    lines = path.read_bytes().split(b"\n")
    lines[2] = "gr\u00f6\u00dfer hund".encode("latin-1")
    path.write_bytes(b"\n".join(lines))


def _missing_target_file(root: Path) -> None:
    (root / "en.validation.txt").unlink()


ROWS: dict[str, Row] = {
    # -- the command line ------------------------------------------------------------
    "unknown-command": Row(("fly",), ("unknown command 'fly'", "train")),
    "unknown-domain": Row(("train", "weather"), ("unknown domain 'weather'", "sentiment")),
    "train-without-domain": Row(("train",), ("needs a domain",)),
    "rate-zero": Row(("train", "sentiment", "--lr", "0"), ("learning_rate", "> 0")),
    "rate-nan": Row(("train", "sentiment", "--lr", "nan"), ("learning_rate", "nan")),
    "rate-word": Row(("train", "sentiment", "--lr", "fast"), ("learning_rate", "'fast'", "auto")),
    "rate-negative": Row(("train", "sentiment", "--lr=-1e-3"), ("learning_rate", "> 0")),
    "unknown-optimizer": Row(("train", "sentiment", "--optimizer", "adamm"),
                             ("optimizer", "'adamm'", "adamw")),
    "unknown-schedule": Row(("train", "sentiment", "--schedule", "cosinus"),
                            ("schedule", "'cosinus'", "cosine")),
    "unknown-schedule-arg": Row(("train", "sentiment", "--schedule", "step",
                                 "--schedule-arg", "gamma=0.5"), ("no parameter gamma", "factor")),
    "schedule-arg-without-value": Row(("train", "sentiment", "--schedule-arg", "factor"),
                                      ("KEY=VALUE", "'factor'")),
    "schedule-arg-not-a-number": Row(("train", "sentiment", "--schedule", "step",
                                      "--schedule-arg", "factor=half"), ("numbers", "'half'")),
    "schedule-factor-above-one": Row(("train", "sentiment", "--data", "{data}", "--schedule",
                                      "step", "--schedule-arg", "factor=2"), ("factor",),
                                     data=_sentiment(lambda lines: lines)),
    "warmup-as-long-as-training": Row(("train", "sentiment", "--data", "{data}",
                                       "--warmup-epochs", "3"), ("warmup", "--warmup-epochs"),
                                      data=_sentiment(lambda lines: lines)),
    "epochs-zero": Row(("train", "sentiment", "--epochs", "0"), ("epochs", ">= 1", "0")),
    "batch-size-negative": Row(("train", "sentiment", "--batch-size", "-4"), ("batch_size",)),
    "steps-per-epoch-zero": Row(("train", "sentiment", "--steps-per-epoch", "0"),
                                ("steps_per_epoch",)),
    "momentum-one": Row(("train", "sentiment", "--momentum", "1"), ("momentum", "[0, 1)")),
    "divergence-factor-one": Row(("train", "sentiment", "--divergence-factor", "1"),
                                 ("divergence_factor", "> 1")),
    "unknown-strategy": Row(("train", "sentiment", "--strategy", "tpu"), ("strategy", "'tpu'")),
    "run-name-with-slash": Row(("train", "sentiment", "--run-name", "a/b"), ("run_name", "'a/b'")),
    "resume-without-name": Row(("train", "sentiment", "--resume"), ("--run-name",),
                               named=False),
    "resume-unknown-run": Row(("train", "sentiment", "--resume", "--run-name", "ghost"),
                              ("ghost", "no run to resume")),
    "resume-with-other-rate": Row(("train", "sentiment", "--data", "{good}", "--resume",
                                   "--run-name", GOOD_RUN, "--lr", "0.5"),
                                  ("--resume", "learning_rate", "0.5", "config.json")),
    "resume-with-other-optimizer": Row(("train", "sentiment", "--data", "{good}", "--resume",
                                        "--run-name", GOOD_RUN, "--optimizer", "sgd"),
                                       ("--resume", "optimizer", "'sgd'")),
    "missing-data-path": Row(("train", "sentiment", "--data", "{out}/nowhere"),
                             ("nowhere", "--data")),
    "unknown-flag": Row(("train", "sentiment", "--no-such-flag", "1e-3"),
                        ("unrecognized", "--no-such-flag")),
    "from-best-not-a-search": Row(("train", "sentiment", "--from-best", "{out}/nosearch"),
                                  ("nosearch",)),
    "lr-find-inverted-bounds": Row(("lr-find", "sentiment", "--data", "{good}", "--start-lr",
                                    "1", "--end-lr", "0.1"), ("end_learning_rate", "0.1")),
    "lr-find-no-steps": Row(("lr-find", "sentiment", "--data", "{good}", "--num-steps", "0"),
                            ("num_steps", "0")),
    "lr-find-stop-factor-one": Row(("lr-find", "sentiment", "--data", "{good}",
                                    "--stop-factor", "1"), ("stop-factor", "> 1")),
    "lr-find-unknown-rule": Row(("lr-find", "sentiment", "--rule", "middle"), ("rule", "middle")),
    "sweep-rate-not-a-number": Row(("sweep", "sentiment", "--rates", "1e-3,fast"),
                                   ("--rates", "fast")),
    "sweep-one-rate": Row(("sweep", "sentiment", "--rates", "1e-3"), ("--rates", "at least 2")),
    "sweep-inverted-bounds": Row(("sweep", "sentiment", "--min-lr", "1", "--max-lr", "0.1"),
                                 ("min", "max")),
    "sweep-unknown-schedule": Row(("sweep", "sentiment", "--schedules", "constant,zigzag"),
                                  ("schedule", "'zigzag'")),
    "tune-unknown-tuner": Row(("tune", "sentiment", "--tuner", "genetic"), ("tuner", "genetic")),
    "schedules-plot-unknown": Row(("schedules", "plot", "zigzag"), ("schedule", "'zigzag'")),
    "report-not-a-sweep": Row(("report", "--sweep", "{out}/nosweep"), ("nosweep", "sweep.json")),
    "translate-not-a-run": Row(("translate", "--run", "{out}/norun", "hallo"),
                               ("norun", "model.keras")),
    # -- sentiment: TSV and CSV folders ------------------------------------------------
    "tsv-label-two": Row(("train", "sentiment", "--data", "{data}"),
                         ("train.tsv:4", "label '2'", "0 or 1"),
                         data=_sentiment(_replace(3, "a fine film\t2"))),
    "tsv-missing-column": Row(("train", "sentiment", "--data", "{data}"),
                              ("train.tsv:1", "missing column", "label"),
                              data=_sentiment(_replace(0, "text\tpolarity"))),
    "tsv-extra-field": Row(("train", "sentiment", "--data", "{data}"),
                           ("train.tsv:6", "expected 2 fields", "found 3"),
                           data=_sentiment(_replace(5, "a\tfine\t1"))),
    "tsv-not-utf8": Row(("train", "sentiment", "--data", "{data}"),
                        ("train.tsv:", "not UTF-8", "Re-save"), data=_sentiment_bytes),
    "tsv-empty-test": Row(("train", "sentiment", "--data", "{data}"), ("test.tsv", "empty"),
                          data=_sentiment(lambda lines: [], name="test.tsv")),
    "csv-unclosed-quote": Row(("train", "sentiment", "--data", "{data}"),
                              ("train.csv:2:", "quotes"),
                              data=_sentiment(_unclosed_quote_then_three_fields, "train.csv")),
    # -- image classification: class folders and .npz ----------------------------------
    "image-one-class": Row(("train", "image_classification", "--data", "{data}"),
                           ("train", "only one class", "at least 2"), data=_image_one_class,
                           domain="image_classification"),
    "image-test-lacks-class": Row(("train", "image_classification", "--data", "{data}"),
                                  ("test", "missing ['dog']"), data=_image_folder_missing_class,
                                  domain="image_classification"),
    "npz-one-class": Row(("train", "image_classification", "--data", "{data}"),
                         ("data.npz", "only class", "at least 2"), data=_npz_one_class,
                         domain="image_classification"),
    "npz-test-class-unseen": Row(("train", "image_classification", "--data", "{data}"),
                                 ("data.npz", "y_test", "[1]", "y_train lacks"),
                                 data=_npz_test_class_unseen, domain="image_classification"),
    "npz-missing-array": Row(("train", "image_classification", "--data", "{data}"),
                             ("data.npz", "missing array", "y_test"),
                             data=_npz(y_test=None), domain="image_classification"),
    "npz-not-a-zip": Row(("train", "image_classification", "--data", "{data}"),
                         ("data.npz", "cannot read it", "numpy.savez"), data=_not_a_npz,
                         domain="image_classification"),
    # -- medical segmentation: images/ + masks/ ----------------------------------------
    "mask-other-size": Row(("train", "medical_segmentation", "--data", "{data}"),
                           ("00.png",), data=_medical(_mask_size),
                           domain="medical_segmentation"),
    "mask-not-binary": Row(("train", "medical_segmentation", "--data", "{data}"),
                           ("01.png", "mask values", "binary"), data=_medical(_mask_grey),
                           domain="medical_segmentation"),
    "mask-missing": Row(("train", "medical_segmentation", "--data", "{data}"),
                        ("02",), data=_medical(_mask_missing), domain="medical_segmentation"),
    "masks-folder-missing": Row(("train", "medical_segmentation", "--data", "{data}"),
                                ("masks",), data=_medical(_no_masks_folder),
                                domain="medical_segmentation"),
    # -- translation: <lang>.<split>.txt -----------------------------------------------
    "parallel-lines-differ": Row(("train", "translation", "--data", "{data}"),
                                 ("train.txt",), data=_translation(_drop_last_line),
                                 domain="translation"),
    "parallel-empty-split": Row(("train", "translation", "--data", "{data}"),
                                ("test.txt",), data=_translation(_empty_split),
                                domain="translation"),
    "parallel-not-utf8": Row(("train", "translation", "--data", "{data}"),
                             ("de.train.txt:3", "not UTF-8"), data=_translation(_latin1),
                             domain="translation"),
    "parallel-file-missing": Row(("train", "translation", "--data", "{data}"),
                                 ("en.validation.txt",), data=_translation(_missing_target_file),
                                 domain="translation"),
}


def _fill(argv: tuple[str, ...], data: Path | None, out: Path, good: Path) -> list[str]:
    values = {"data": str(data), "out": str(out), "good": str(good)}
    return [part.format(**values) for part in argv]


def test_the_matrix_has_at_least_40_rows_in_every_local_format():
    assert len(ROWS) >= 40
    with_data = {row.domain for row in ROWS.values() if row.data is not None}
    assert with_data == {"sentiment", "image_classification", "medical_segmentation",
                         "translation"}


@pytest.mark.parametrize("name", ROWS)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(name, good_runs, demo_data, tmp_path,
                                                          capsys):
    row = ROWS[name]
    data = row.data(tmp_path) if row.data else None
    out = good_runs.output
    argv = _fill(row.argv, data, out, demo_data[row.domain])
    if argv[0] in ("train", "lr-find", "sweep", "tune") and len(argv) > 1 \
            and not argv[1].startswith("-"):
        # The tiny budget first, so that the row's own flags win over it.
        named = ["--run-name", GOOD_RUN] if row.named and "--run-name" not in argv else []
        argv = [*argv[:2], *TINY, "--output", str(out), *named, *argv[2:], *row.extra]
    before = {domain: snapshot(path) for domain, path in good_runs.run_dirs.items()}
    listing = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == row.exit, (argv, captured.err[-2000:])
    assert len(lines) == 1, captured.err[-2000:]
    assert lines[0].startswith("lrsuite: error: "), lines[0]
    for word in row.words:
        assert word in lines[0], (word, lines[0])
    assert {d: snapshot(p) for d, p in good_runs.run_dirs.items()} == before
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == listing
