"""The batch-size sweep: one rate grid per batch size, resumable, and a report whose fit of
log(best rate) on log(batch size) is parsed back; the fit itself on planted points."""

from __future__ import annotations

import math

import pytest

from common import cli
from common.batch_scaling import (
    fit_slope,
    parse_batch_sizes,
    run_batch_size_sweep,
    slope_resolution,
)
from common.errors import UserError
from common.runs import read_json
from tests.toy_domain import TOY, ToyConfig

SIZES = [8, 32]
RATES = [1e-4, 0.03, 0.3]


@pytest.mark.parametrize("slope", [1.0, 0.5])
def test_the_fit_recovers_a_planted_slope(slope):
    sizes = [32, 64, 128, 256]
    rates = [2e-3 * (b / 32) ** slope for b in sizes]
    fitted, intercept = fit_slope(sizes, rates)
    assert fitted == pytest.approx(slope, abs=1e-9)
    assert math.exp(intercept) * 32 ** fitted == pytest.approx(2e-3)


def test_the_grid_bounds_the_slope_it_can_resolve():
    # A 10x grid over a batch span of 8x: one step of the grid is log(10)/log(8) of slope.
    assert slope_resolution([1e-3, 1e-2, 1e-1], [32, 256]) == pytest.approx(
        math.log(10) / math.log(8))


@pytest.mark.parametrize("text", ["32", "a,b", "0,32", "32,32"])
def test_bad_batch_sizes_are_refused(text):
    with pytest.raises(UserError, match="--batch-sizes"):
        parse_batch_sizes(text)


def test_bad_batch_sizes_on_the_command_line_exit_2_before_any_run(tmp_path, capsys):
    code = cli.main(["sweep", "sentiment", "--smoke", "--batch-sizes", "32,x",
                     "--output", str(tmp_path / "runs")])
    assert code == 2
    assert "--batch-sizes" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bs")
    cfg = ToyConfig(epochs=2, output=str(folder), verbose=0, monitor_every=0, log_lr_every=0)
    md = run_batch_size_sweep(TOY, cfg, folder / "s", batch_sizes=SIZES, rates=RATES,
                              seeds=[1, 2], range_test_steps=20)
    return folder / "s", md


def test_one_grid_per_batch_size_with_its_own_batch_size(scaled):
    sweep_dir, _ = scaled
    for size in SIZES:
        runs = sorted((sweep_dir / f"batch-{size}").glob("rate-*/seed-*/summary.json"))
        assert len(runs) == len(RATES) * 2
        assert {read_json(p)["batch_size"] for p in runs} == {size}
        assert (sweep_dir / f"batch-{size}" / "report.md").is_file()
    steps = [read_json(next((sweep_dir / f"batch-{s}").glob("rate-*/seed-1/summary.json")))
             ["steps_run"] for s in SIZES]
    assert steps[0] > steps[1]  # same epochs: the larger batch takes fewer steps


def test_the_report_holds_the_fit_of_the_best_rates(scaled):
    sweep_dir, md = scaled
    fig = read_json(sweep_dir / "batch_scaling.json")
    best = [row["best_rate"] for row in fig["rows"]]
    assert [row["batch_size"] for row in fig["rows"]] == SIZES
    for row, size in zip(fig["rows"], SIZES, strict=True):
        assert row["best_rate"] == read_json(sweep_dir / f"batch-{size}" / "sweep.json")["best_rate"]
        assert set(row["per_seed_best"]) == {"1", "2"}
    assert fig["slope"] == pytest.approx(fit_slope(SIZES, best)[0])
    text = md.read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert [cells.split("|")[1].strip() for cells in table[1:]] == [str(s) for s in SIZES]
    assert f"Fitted slope of log(best rate) on log(batch size): {fig['slope']:.2f}" in text
    assert (sweep_dir / "plots" / "batch_scaling.png").read_bytes()[:4] == b"\x89PNG"


def test_rerunning_reads_every_finished_run_back(scaled):
    sweep_dir, _ = scaled
    stamps = {p: p.stat().st_mtime_ns for p in sweep_dir.glob("batch-*/rate-*/seed-*/summary.json")}
    cfg = ToyConfig(epochs=2, output=str(sweep_dir.parent), verbose=0, monitor_every=0,
                    log_lr_every=0)
    run_batch_size_sweep(TOY, cfg, sweep_dir, batch_sizes=SIZES, rates=RATES, seeds=[1, 2],
                         range_test_steps=20)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
