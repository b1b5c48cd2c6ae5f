"""Sweeps over seeds: one run per point and seed, tables with mean, spread, n and
paired verdicts (parsed from the report), and more seeds later run only the new ones."""

from __future__ import annotations

import pytest

from common.reporting import SweepReport, write_sweep_report
from common.sweep import Sweep
from tests.toy_domain import TOY, ToyConfig

SEEDS = [1, 2, 3]


def _sweep(folder, seeds, schedules=("constant", "polynomial"), optimizers=()):
    cfg = ToyConfig(epochs=2, output=str(folder), verbose=0, monitor_every=0, log_lr_every=0)
    # 1e-4 is far too low for this task; 0.1 is in its good band (tests/toy_domain.py).
    return Sweep(TOY, cfg, folder / "s", rates=[1e-4, 0.1], schedules=schedules,
                 optimizers=optimizers, range_test_steps=30, seeds=seeds)


def _table(md: str, first: str) -> list[list[str]]:
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first} |"))
    rows = []
    for line in lines[start + 1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in ("schedule", "optimizer", "rate", ""):
            break
        rows.append(cells)
    return rows


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    first = _sweep(folder, SEEDS[:1])
    first.run()
    stamps = {p: p.stat().st_mtime_ns for p in first.dir.glob("*/seed-1/summary.json")}
    sweep = _sweep(folder, SEEDS)  # the same sweep with more seeds
    sweep.run()
    md, _ = write_sweep_report(sweep.dir)
    return sweep, md.read_text(), stamps


def test_each_point_has_a_run_per_seed_and_the_old_seed_is_reused(seeded):
    sweep, _, stamps = seeded
    for point in ("rate-00-0.0001", "rate-01-0.1", "schedule-polynomial"):
        assert sorted(p.name for p in (sweep.dir / point).iterdir()) == [
            "seed-1", "seed-2", "seed-3"]
    assert stamps and {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_the_rate_table_holds_mean_spread_n_and_a_planted_difference_is_judged(seeded):
    sweep, md, _ = seeded
    rows = {row[0]: row for row in _table(md, "rate")}
    low, good = rows["0.0001"], rows["0.1"]
    assert low[1] == good[1] == "3"
    assert "±" in low[3] and "[" in low[3]
    assert low[2].startswith("too low 3/3")
    assert good[6] == "baseline"
    assert low[6].endswith("worse")  # val loss far higher at 1e-4, beyond noise
    report = SweepReport(sweep.dir)
    values = report._values(report.points["rate-00-0.0001"], "val_loss")
    assert sorted(values) == SEEDS


def test_two_identical_configs_tie_and_the_report_names_no_winner(tmp_path):
    # Step decay every 3 epochs never drops in a 2-epoch run: the same rate as constant.
    sweep = _sweep(tmp_path, SEEDS, schedules=("constant", "step"), optimizers=("sgd",))
    sweep.run()
    report = SweepReport(sweep.dir)
    same = report.compare(report.points["schedule-step"], report.points["rate-01-0.1"])
    assert same["verdict"] == "within noise" and same["n"] == 3
    md = write_sweep_report(sweep.dir)[0].read_text()
    assert "No schedule beats the constant rate beyond noise at this budget: they tie" in md
    assert "The sgd entry is the grid's run at the best rate." in md
    row = next(r for r in _table(md, "schedule") if r[0] == "step")
    assert row[6].endswith("within noise")


def test_the_sweep_writes_its_hparams_experiment(seeded):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sweep, _, _ = seeded
    events = EventAccumulator(str(sweep.dir), size_guidance={"tensors": 0})
    events.Reload()
    assert "_hparams_/experiment" in events.Tags()["tensors"]
    sessions = list(sweep.dir.glob("*/seed-*/**/events.out.tfevents.*"))
    assert sessions
