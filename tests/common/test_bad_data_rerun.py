"""A sweep or a search that fails on bad data leaves nothing that claims its name: the
rerun with the data fixed is accepted (issue 14, item 3)."""

from __future__ import annotations

from pathlib import Path

from common import cli
from tests.conftest import write_sentiment_folder

TINY = ["--smoke", "--epochs", "1", "--steps-per-epoch", "2", "--monitor-every", "0",
        "--log-lr-every", "0", "--verbose", "0"]


def bad_label_folder(folder: Path) -> tuple[Path, Path]:
    """A sentiment folder whose train.tsv has label 2 on its last line; and that file."""
    data = write_sentiment_folder(folder, train=64, test=24)
    train = data / "train.tsv"
    lines = train.read_text(encoding="utf-8").splitlines()
    lines[-1] = lines[-1].rsplit("\t", 1)[0] + "\t2"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data, train


def fix_labels(train: Path) -> None:
    text = train.read_text(encoding="utf-8")
    train.write_text(text[: text.rstrip("\n").rfind("\t")] + "\t1\n", encoding="utf-8")


def test_a_sweep_that_failed_on_bad_data_can_rerun_with_the_data_fixed(tmp_path, capsys):
    data, train = bad_label_folder(tmp_path / "data")
    argv = ["sweep", "sentiment", "--data", str(data), "--output", str(tmp_path / "runs"),
            "--name", "s", "--rates", "0.001,0.01", "--schedules", "", "--optimizers", "",
            "--range-test-steps", "4", *TINY]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.tsv" in err[0], err
    sweep_dir = tmp_path / "runs" / "sentiment" / "sweeps" / "s"
    assert not (sweep_dir / "sweep.json").exists()
    fix_labels(train)
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert (sweep_dir / "sweep.json").is_file() and (sweep_dir / "report.md").is_file()


def test_a_search_that_failed_on_bad_data_can_rerun_with_the_data_fixed(tmp_path, capsys):
    data, train = bad_label_folder(tmp_path / "data")
    argv = ["tune", "sentiment", "--data", str(data), "--output", str(tmp_path / "runs"),
            "--name", "k", "--tuner", "random", "--max-trials", "1", "--max-epochs", "1",
            *TINY]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.tsv" in err[0], err
    search_dir = tmp_path / "runs" / "sentiment" / "tuning" / "k"
    left = sorted(p.name for p in search_dir.iterdir()) if search_dir.exists() else []
    assert not {"search.json", "keras_tuner", "events.jsonl"} & set(left), left
    assert not list(search_dir.glob("events.out.tfevents.*"))
    fix_labels(train)
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert (search_dir / "search.json").is_file() and (search_dir / "best.json").is_file()
