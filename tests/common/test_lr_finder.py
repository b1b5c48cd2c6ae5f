"""The range test on a convex problem: a suggestion in the known-good band, weights untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common import lr_finder
from common.errors import UserError
from common.training import run_training
from tests.toy_domain import KNOWN_GOOD_BAND, TOY, ToyConfig


def test_range_test_suggests_a_rate_in_the_known_good_band(tmp_path):
    cfg = ToyConfig(output=str(tmp_path))
    result = lr_finder.find_learning_rate(TOY, cfg, out_dir=tmp_path / "lr", start_lr=1e-7,
                                          end_lr=10.0, num_steps=100)  # the CLI defaults
    low, high = KNOWN_GOOD_BAND
    for rule in ("valley", "steepest", "minimum"):
        assert low <= result.suggestions[rule] < high, (rule, result.suggestions)
    assert result.stopped_early  # 10 is far past divergence: the rule must fire
    assert result.learning_rates[-1] < 10.0
    assert result.learning_rates == sorted(result.learning_rates)


def test_the_range_test_is_an_ordinary_run_directory(tmp_path):
    cfg = ToyConfig(output=str(tmp_path))
    result = lr_finder.find_learning_rate(TOY, cfg, out_dir=tmp_path / "lr", num_steps=40,
                                          start_lr=1e-4, end_lr=10.0)
    run = tmp_path / "lr"
    summary = json.loads((run / "summary.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert summary["kind"] == "range_test" and config["schedule"] == "range_test"
    assert summary["status"] == "diverged"  # the watch ended the ramp
    rows = (run / "steps.csv").read_text().splitlines()[1:]
    assert len(rows) == len(result.losses) == summary["steps_run"]
    rates = [float(r.split(",")[2]) for r in rows]
    assert rates == pytest.approx(result.learning_rates, rel=1e-6)
    assert rates[0] == pytest.approx(1e-4, rel=1e-6)
    assert list((run / "train").glob("events.out.tfevents.*"))
    again = lr_finder.find_learning_rate(TOY, cfg, out_dir=run, num_steps=40, start_lr=1e-4,
                                         end_lr=10.0)  # read back, not run again
    assert again.suggestions == result.suggestions
    assert (run / "steps.csv").read_text().splitlines()[1:] == rows


def test_find_learning_rate_writes_png_csv_json_and_tensorboard(tmp_path):
    cfg = ToyConfig()
    result = lr_finder.find_learning_rate(TOY, cfg, out_dir=tmp_path / "lr", num_steps=40,
                                          start_lr=1e-4, end_lr=10.0)
    files = {p.name for p in (tmp_path / "lr").iterdir()}
    assert {"range_test.png", "range_test.csv", "range_test.json"} <= files
    assert any(name.startswith("events.out.tfevents") for name in files)
    data = json.loads((tmp_path / "lr" / "range_test.json").read_text())
    assert data["suggestion"] == pytest.approx(result.suggestion)
    png = (tmp_path / "lr" / "range_test.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_with_auto_rate_runs_the_range_test_first(tmp_path):
    cfg = ToyConfig(learning_rate="auto", epochs=1, output=str(tmp_path), verbose=0)
    resolved, range_test, run_dir = lr_finder.resolve_learning_rate(TOY, cfg, announce=False)
    assert (run_dir / "lr_find" / "range_test.json").is_file()
    summary = run_training(TOY, resolved, run_dir=run_dir, range_test=range_test,
                           requested_learning_rate="auto", announce=False).summary
    assert json.loads((run_dir / "config.json").read_text())["requested_learning_rate"] == "auto"
    suggestion = summary["lr_find"]["suggestion"]
    assert summary["learning_rate"] == pytest.approx(suggestion)
    assert KNOWN_GOOD_BAND[0] <= suggestion < KNOWN_GOOD_BAND[1]
    assert summary["status"] == "completed"


def test_suggest_needs_enough_points():
    with pytest.raises(UserError, match="too few steps"):
        lr_finder.suggest([1e-3, 1e-2], [1.0, 0.5])


def test_valley_ignores_a_noisy_flat_start():
    rng = np.random.default_rng(0)
    lrs = np.logspace(-6, 0, 120)
    # Flat and noisy up to 1e-3, then a clean descent to a minimum at 1e-1.
    flat = 5 + rng.normal(scale=1.0, size=60)
    descent = np.linspace(5, 0.5, 40)
    rise = np.linspace(0.5, 8, 20)
    suggestions = lr_finder.suggest(lrs.tolist(), np.concatenate([flat, descent, rise]).tolist())
    assert 1e-3 < suggestions["valley"] < 1e-1
    assert suggestions["minimum"] == pytest.approx(lrs[99] / 10, rel=0.5)


def test_range_test_over_seeds_reports_each_suggestion_and_their_median(tmp_path):
    cfg = ToyConfig(output=str(tmp_path))
    summary = lr_finder.find_over_seeds(
        TOY, cfg, [1, 2, 3], out_dir=tmp_path / "lr", num_steps=40, start_lr=1e-4,
        end_lr=10.0, bundle_for=lambda seed: TOY.load_data(cfg.replace(seed=seed)))
    rates = [summary["suggestions"][str(s)] for s in (1, 2, 3)]
    assert summary["median"] == pytest.approx(sorted(rates)[1])
    assert summary["max_over_min"] == pytest.approx(max(rates) / min(rates))
    for seed in (1, 2, 3):
        stored = json.loads((tmp_path / "lr" / f"seed-{seed}" / "config.json").read_text())
        assert stored["seed"] == seed
    assert json.loads((tmp_path / "lr" / "range_tests.json").read_text())["seeds"] == [1, 2, 3]
    assert (tmp_path / "lr" / "range_tests.png").read_bytes()[:4] == b"\x89PNG"


def test_a_range_test_whose_loss_barely_moves_warns_and_is_framed():
    flat = lr_finder.RangeTest(learning_rates=list(np.logspace(-6, 0, 60)),
                               losses=[0.69] * 60, smoothed=list(0.698 - 0.0001 * np.arange(60)),
                               suggestions={"valley": 1e-3}, rule="valley", stopped_early=False,
                               wall_time_s=1.0)
    assert "fell by only" in flat.warning
    low, high = lr_finder.plot_range([0.698, 0.697, 0.689, 0.70, 5.0])
    assert low < 0.689 < 0.698 < high < 1.0  # the divergence's tail does not squash the curve
