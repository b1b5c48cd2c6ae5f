"""`make report`'s cross-domain page: each domain's good band with its uncertainty over
seeds (counts per rate, split verdicts as uncertain edges, the per-seed best rates'
range), parsed from the Markdown."""

from __future__ import annotations

import json

import pytest

from common.reporting import write_overview
from common.sweep import Sweep
from tests.toy_domain import TOY, ToyConfig

SEEDS = [1, 2, 3]
# 1e-4 is far too low for the toy; 0.1 is inside its good band (tests/toy_domain.py).
RATES = [1e-4, 0.1]


def run_sweep(output, seeds):
    cfg = ToyConfig(epochs=2, output=str(output), verbose=0, monitor_every=0, log_lr_every=0)
    sweep = Sweep(TOY, cfg, output / "toy" / "sweeps" / "s", rates=RATES,
                  schedules=("constant",), optimizers=(), range_test_steps=30, seeds=seeds)
    sweep.run()
    return sweep


def band_table(md: str) -> dict[str, str]:
    """The band table's toy row, by column name."""
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    header = next(i for i, line in enumerate(lines) if "good rates (majority)" in line)
    names = [c.strip() for c in lines[header].strip("|").split("|")]
    row = [c.strip() for c in lines[header + 1].strip("|").split("|")]
    return dict(zip(names, row, strict=True))


@pytest.fixture(scope="module")
def three_seeds(tmp_path_factory):
    output = tmp_path_factory.mktemp("overview")
    sweep = run_sweep(output, SEEDS)
    return output, sweep


def test_band_counts_every_seed_and_the_best_rate_range(three_seeds):
    output, sweep = three_seeds
    md, page = write_overview(output)
    row = band_table(md.read_text())
    assert row["domain"] == "toy" and row["seeds"] == "3"
    assert row["good rates (majority)"] == "0.1 (3/3)"
    assert row["uncertain edges"] == "none: all 3 seeds agree"
    assert row["best rate"] == "0.1 (same on every seed, n=3)"
    text = md.read_text()
    assert text.count("Columns: good rates") == 1  # the caption once, not per row
    assert "good rates (majority)" in page.read_text()


def test_a_split_verdict_is_an_uncertain_edge(three_seeds):
    output, sweep = three_seeds
    # One seed of the good rate judged otherwise (as a rerun of its diagnosis might).
    path = sweep.dir / "rate-01-0.1" / "seed-3" / "summary.json"
    original = path.read_text()
    summary = json.loads(original)
    summary["diagnosis"]["verdict"] = "too_high"
    path.write_text(json.dumps(summary))
    try:
        md, _ = write_overview(output)
        row = band_table(md.read_text())
    finally:
        path.write_text(original)
    assert row["good rates (majority)"] == "0.1 (2/3)"
    assert row["uncertain edges"] == "0.1: good 2/3, too high 1/3"


def test_one_seed_says_it_has_no_spread(tmp_path):
    run_sweep(tmp_path, SEEDS[:1])
    md, _ = write_overview(tmp_path)
    row = band_table(md.read_text())
    assert row["seeds"] == "1"
    assert row["uncertain edges"] == "one seed: no spread"
    assert row["best rate"] == "0.1 (one seed: no spread)"
