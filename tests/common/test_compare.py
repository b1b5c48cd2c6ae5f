"""`lrsuite compare --preset rate-free` on the toy domain: one run per point and seed, a
report whose table parses, compare.json equal to the runs' summaries, reruns that reuse
finished runs, the tuned point read from a real sweep, and bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common import cli
from common.compare import (
    STEP_TIMES_FILE,
    Compare,
    StepTimer,
    newest_sweep,
    rate_free_points,
    tuned_source,
)
from common.compare_report import ONE_SEED, write_compare_report
from common.errors import UserError
from common.runs import read_json, write_json
from tests.toy_domain import TOY, ToyConfig

TRAINED = ("default", "schedule_free_adamw", "prodigy", "dadapt_adam", "dog", "wsd")
STEPS, EPOCHS = 4, 2


def _cfg(folder: Path, **changes) -> ToyConfig:
    values = {"epochs": EPOCHS, "steps_per_epoch": STEPS, "output": str(folder), "verbose": 0,
              "monitor_every": 0, "log_lr_every": 0, "early_stopping": 0}
    return ToyConfig(**{**values, **changes})


def _compare(folder: Path, seeds, tuned=None, cfg=None, only=None) -> Compare:
    cfg = cfg or _cfg(folder)
    points = [p for p in rate_free_points(cfg, tuned) if only is None or p.name in only]
    return Compare(TOY, cfg, folder / "toy" / "compare" / "c", points, list(seeds),
                   tuned=tuned, announce=False)


def _table(md: str) -> dict[str, list[str]]:
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[0] == "point"
    return {cells[0]: cells for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in lines[1:])}


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    first = _compare(folder, [1])
    first.run()
    one_seed_md = write_compare_report(first.dir)[0].read_text()
    stamps = {p: p.stat().st_mtime_ns for p in first.dir.glob("*/seed-1/summary.json")}
    again = _compare(folder, [1, 2])  # the same comparison with one more seed
    again.run()
    md, page = write_compare_report(again.dir)
    return again, one_seed_md, md.read_text(), stamps


def test_one_run_per_trained_point_and_seed_and_the_finished_ones_are_reused(compared):
    comparison, _, _, stamps = compared
    folders = sorted(p.name for p in comparison.dir.iterdir() if p.is_dir() and p.name != "plots")
    assert folders == sorted(TRAINED)  # tuned = default without a sweep: no duplicate run
    for point in TRAINED:
        assert sorted(p.name for p in (comparison.dir / point).iterdir()) == ["seed-1", "seed-2"]
        for seed in (1, 2):
            summary = read_json(comparison.dir / point / f"seed-{seed}" / "summary.json")
            assert summary["status"] == "completed" and summary["epochs_run"] == EPOCHS
            assert summary["steps_run"] == EPOCHS * STEPS
    assert len(stamps) == len(TRAINED)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_each_point_trains_what_the_preset_says(compared):
    comparison, _, _, _ = compared
    config = {p: read_json(comparison.dir / p / "seed-2" / "config.json") for p in TRAINED}
    assert (config["default"]["optimizer"], config["default"]["learning_rate"]) == ("sgd", 0.1)
    assert config["schedule_free_adamw"]["learning_rate"] == pytest.approx(0.0025)
    for name in ("prodigy", "dadapt_adam", "dog"):
        assert (config[name]["optimizer"], config[name]["learning_rate"],
                config[name]["schedule"]) == (name, 1.0, "constant")
    assert (config["wsd"]["optimizer"], config["wsd"]["schedule"]) == ("sgd", "wsd")
    assert all(c["early_stopping"] == 0 and c["epochs"] == EPOCHS for c in config.values())


def test_the_table_parses_and_compare_json_matches_the_summaries(compared):
    comparison, _, md, _ = compared
    rows = _table(md)
    assert list(rows) == ["default", "tuned", *TRAINED[1:]]
    data = json.loads((comparison.dir / "compare.json").read_text())
    assert data["objective"] == "val_loss" and data["seeds"] == [1, 2]
    entries = {e["point"]: e for e in data["points"]}
    for point in TRAINED:
        values = {str(s): read_json(comparison.dir / point / f"seed-{s}" / "summary.json")
                  ["val_loss"] for s in (1, 2)}
        assert entries[point]["values"] == pytest.approx(values)
        mean = sum(values.values()) / 2
        assert entries[point]["objective"]["mean"] == pytest.approx(mean)
        assert entries[point]["objective"]["n"] == 2
        assert rows[point][2].endswith("n=2") and "±" in rows[point][2]
        assert rows[point][5] == str(EPOCHS)
    assert entries["tuned"]["values"] == entries["default"]["values"]
    assert rows["tuned"][3] == "baseline" and rows["default"][3] == "same runs as tuned"
    assert rows["tuned"][1] == "tuned = default (no sweep found)"
    assert entries["default"]["step_time_vs_default"] == pytest.approx(1.0)
    for point in TRAINED[1:]:
        versus = entries[point]["vs_tuned"]
        assert versus["n"] == 2 and versus["verdict"] in ("better", "worse", "within noise")
        difference = entries[point]["objective"]["mean"] - entries["tuned"]["objective"]["mean"]
        assert versus["difference"] == pytest.approx(difference)
        assert rows[point][3].endswith(versus["verdict"])
    assert data["verdict"].startswith("Within noise of tuned (= default):")
    assert (comparison.dir / "plots" / "val_loss.png").stat().st_size > 0
    assert (comparison.dir / "plots" / "effective_rate.png").stat().st_size > 0
    assert (comparison.dir / "report.html").read_text().count("<tr>") == len(rows) + 1


def test_one_seed_shows_differences_without_judging_them(compared):
    _, one_seed_md, _, _ = compared
    assert ONE_SEED in one_seed_md
    assert "(one seed: not judged)" in _table(one_seed_md)["prodigy"][3]


def test_a_divergence_makes_a_point_worse_whatever_its_other_seeds_say(compared, tmp_path):
    import shutil

    comparison = compared[0]
    folder = tmp_path / "c"
    shutil.copytree(comparison.dir, folder)
    # Prodigy diverges on seed 2, where tuned (= default) finished; DoG diverges on both.
    for point, seeds in (("prodigy", (2,)), ("dog", (1, 2))):
        for seed in seeds:
            path = folder / point / f"seed-{seed}" / "summary.json"
            summary = read_json(path)
            summary["status"] = "diverged"
            write_json(path, summary)
    md, _ = write_compare_report(folder)
    entries = {e["point"]: e for e in read_json(folder / "compare.json")["points"]}
    rows = _table(md.read_text())
    prodigy, dog = entries["prodigy"]["vs_tuned"], entries["dog"]["vs_tuned"]
    assert prodigy["verdict"] == "worse" and prodigy["diverged_seeds"] == [2]
    assert prodigy["n"] == 1  # the paired difference keeps the seed both finished
    assert rows["prodigy"][3].endswith("diverged on seed 2: worse")
    assert rows["prodigy"][2].endswith("(diverged 1/2)")
    assert dog["verdict"] == "worse" and dog["diverged_seeds"] == [1, 2]
    assert dog["difference"] is None and rows["dog"][3] == "diverged on seed 1, 2: worse"
    verdict = read_json(folder / "compare.json")["verdict"]
    assert "dog" in verdict.split("Worse than")[1] and "prodigy" in verdict.split("Worse than")[1]
    # The others are judged as before.
    assert entries["dadapt_adam"]["vs_tuned"]["n"] == 2
    assert "diverged_seeds" not in entries["dadapt_adam"]["vs_tuned"]


def test_step_times_are_recorded_per_step_and_the_traced_step_left_out(compared):
    comparison, _, _, _ = compared
    data = json.loads((comparison.dir / "compare.json").read_text())
    for entry in data["points"]:
        assert entry["seconds_per_step"] > 0
        assert entry["seconds_per_step_source"] == ["step_times"]
    records = read_json(comparison.dir / "prodigy" / "seed-1" / STEP_TIMES_FILE)["steps"]
    # One fit of EPOCHS * STEPS steps, its first (traced) step left out.
    assert [r[0] for r in records] == list(range(1, EPOCHS * STEPS))


def test_prodigy_logs_the_rate_it_estimated_not_its_lr(compared):
    comparison, _, _, _ = compared
    from common.reporting import read_steps

    _, rates, _ = read_steps(comparison.dir / "prodigy" / "seed-1")
    assert len(rates) == EPOCHS * STEPS and rates.max() < 0.5  # d * lr with d from 1e-6 up


def test_a_resumed_timer_keeps_only_the_completed_epochs(tmp_path):
    path = tmp_path / STEP_TIMES_FILE
    write_json(path, {"steps": [[step, 0.01] for step in range(10)]})
    timer = StepTimer(path, first_step=6)
    timer.on_train_begin()
    for _ in range(3):
        timer.on_train_batch_begin(0)
        timer.on_train_batch_end(0)
    timer.on_train_end()
    assert [r[0] for r in read_json(path)["steps"]] == [0, 1, 2, 3, 4, 5, 7, 8]


def test_a_rerun_with_other_settings_fails_before_anything_trains(compared):
    comparison, _, _, _ = compared
    before = sorted(p for p in comparison.dir.rglob("*") if p.is_file())
    folder = comparison.dir.parents[2]
    with pytest.raises(UserError, match="epochs differ"):
        _compare(folder, [1, 2], cfg=_cfg(folder, epochs=3)).run()
    with pytest.raises(UserError, match="a rerun may only add seeds"):
        _compare(folder, [2]).run()
    assert sorted(p for p in comparison.dir.rglob("*") if p.is_file()) == before


def test_a_folder_that_is_no_sweep_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no sweep.json there"):
        tuned_source(tmp_path, "toy")
    assert newest_sweep(tmp_path, "toy") is None


@pytest.mark.parametrize("args, message", [
    (["--preset", "fast"], "--preset must be one of: rate-free (received 'fast')"),
    ([], "--preset must be one of: rate-free (none given)"),
    (["--preset", "rate-free", "--seeds", "0"], "--seeds must be a count >= 1"),
    (["--preset", "rate-free", "--from-sweep", "/nonexistent"], "no sweep.json there"),
])
def test_bad_flags_exit_2_with_one_line(tmp_path, capsys, args, message):
    code = cli.main(["compare", "sentiment", "--smoke", "--output", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lrsuite: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "sentiment" / "compare").exists()


def test_every_compare_option_has_help(capsys):
    assert cli.main(["compare", "sentiment", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--preset", "--seeds", "--from-sweep", "--name", "--epochs", "--data"):
        assert flag in out


def test_the_sentiment_smoke_preset_compares_every_point(shared_data, tmp_path, capsys):
    data = shared_data / "sentiment" / "rt_polarity"
    code = cli.main(["compare", "sentiment", "--preset", "rate-free", "--smoke", "--data",
                     str(data), "--steps-per-epoch", "3", "--epochs", "1", "--output", str(tmp_path),
                     "--name", "smoke"])
    assert code == 0, capsys.readouterr().err
    folder = tmp_path / "sentiment" / "compare" / "smoke"
    data = json.loads((folder / "compare.json").read_text())
    entries = {e["point"]: e for e in data["points"]}
    assert list(entries) == ["default", "tuned", *TRAINED[1:]]
    for point in TRAINED:
        summary = read_json(folder / point / "seed-42" / "summary.json")
        assert entries[point]["values"] == {"42": pytest.approx(summary["val_accuracy"])}
    assert list(_table((folder / "report.md").read_text())) == list(entries)


@pytest.fixture
def toy_registered(monkeypatch):
    """The toy domain under the name `toy` in the registry, so the command line reaches it."""
    import common.domain
    import tests.toy_domain

    monkeypatch.setattr(tests.toy_domain, "DOMAIN", TOY, raising=False)
    monkeypatch.setitem(common.domain.DOMAIN_MODULES, "toy", "tests.toy_domain")


def test_the_command_finds_the_newest_sweep_and_a_rerun_keeps_it(toy_registered, tmp_path,
                                                                  capsys):
    tiny = ["--smoke", "--epochs", "1", "--output", str(tmp_path), "--monitor-every", "0",
            "--log-lr-every", "0"]

    def sweep(name, rates):
        assert cli.main(["sweep", "toy", *tiny, "--name", name, "--rates", rates,
                         "--schedules", "", "--optimizers", "", "--range-test-steps", "10"]) == 0

    short = ["compare", "toy", "--preset", "rate-free", *tiny, "--steps-per-epoch", "2",
             "--name", "short"]
    assert cli.main(short) == 2  # 2 steps leave WSD no cool-down step: checked first
    assert "compare point wsd: --schedule wsd: the cool-down" in capsys.readouterr().err
    assert not any((tmp_path / "toy" / "compare" / "short").glob("**/*.json"))
    sweep("first", "1e-4,0.03")
    compare = ["compare", "toy", "--preset", "rate-free", *tiny, "--name", "c"]
    assert cli.main(compare) == 0
    assert "tuned: 0.03 from" in capsys.readouterr().out
    folder = tmp_path / "toy" / "compare" / "c"
    stamps = {p: p.stat().st_mtime_ns for p in folder.glob("*/seed-42/summary.json")}
    assert len(stamps) == 7  # tuned differs from the default (0.1) here
    config = read_json(folder / "tuned" / "seed-42" / "config.json")
    assert (config["learning_rate"], config["optimizer"], config["epochs"]) == (0.03, "sgd", 1)
    rows = _table((folder / "report.md").read_text())
    assert rows["tuned"][3] == "baseline" and "best constant rate of sweep" in rows["tuned"][1]
    assert rows["default"][3].endswith("(one seed: not judged)")
    sweep("second", "1e-4,0.01")  # newer, but the comparison already has its tuned rate
    assert cli.main(compare) == 0  # another tuned point would be another plan: exit 2
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    data = json.loads((folder / "compare.json").read_text())
    assert data["tuned"]["best_rate"] == 0.03 and data["tuned"]["sweep"].endswith("first")
