"""Intervals and verdicts over seeds, checked against hand-computed figures."""

from __future__ import annotations

import json
import math

import pytest

from common.evidence import compare_with_divergences, majority, paired_comparison, spread


def test_spread_by_hand():
    s = spread([0.76, 0.77, 0.75])
    assert s.mean == pytest.approx(0.76)
    assert s.sd == pytest.approx(0.01)  # sqrt(((0)^2 + 0.01^2 + 0.01^2) / 2)
    assert (s.low, s.high, s.n) == (0.75, 0.77, 3)
    assert spread([1.0]).sd is None
    assert spread([math.nan]) is None


def test_paired_interval_by_hand():
    # differences 0.02, 0.04, 0.03: mean 0.03, sd 0.01, t(0.975, 2) = 4.302653
    entry = {1: 0.80, 7: 0.81, 42: 0.79}
    baseline = {1: 0.78, 7: 0.77, 42: 0.76}
    result = paired_comparison(entry, baseline)
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert result.difference == pytest.approx(0.03)
    assert result.low == pytest.approx(0.03 - half, rel=1e-5)
    assert result.high == pytest.approx(0.03 + half, rel=1e-5)
    assert result.verdict == "better" and result.n == 3


def test_direction_min_turns_a_higher_loss_into_worse():
    result = paired_comparison({1: 1.2, 2: 1.3, 3: 1.25}, {1: 1.0, 2: 1.1, 3: 1.02},
                               direction="min")
    assert result.verdict == "worse"


def test_a_difference_smaller_than_its_spread_is_within_noise():
    result = paired_comparison({1: 0.76, 2: 0.74, 3: 0.77}, {1: 0.75, 2: 0.76, 3: 0.75})
    assert result.low < 0 < result.high and result.verdict == "within noise"


def test_one_seed_is_not_judged_and_unshared_seeds_are_left_out():
    one = paired_comparison({1: 0.9, 2: 0.5}, {1: 0.1})
    assert one.verdict == "one seed" and one.low is None and one.difference == pytest.approx(0.8)
    assert paired_comparison({1: 0.9}, {2: 0.1}) is None
    assert paired_comparison({1: math.nan, 2: 0.5}, {1: 0.2, 2: 0.4}).n == 1


def test_a_divergence_is_a_loss_on_its_seed_not_a_missing_value():
    baseline = {1: 0.42, 2: 0.44, 3: 0.41}
    # Finished seeds alone would leave the gap inside a wide 2-seed interval.
    finished = {1: 0.17, 2: 0.30}
    assert paired_comparison(finished, baseline).verdict == "within noise"
    versus = compare_with_divergences(finished, baseline, entry_diverged=[3])
    assert versus["verdict"] == "worse" and versus["diverged_seeds"] == [3]
    assert versus["n"] == 2 and versus["difference"] == pytest.approx(-0.195)
    # Diverged everywhere: still worse, with no difference to show.
    versus = compare_with_divergences({}, baseline, entry_diverged=[1, 2, 3])
    assert versus["verdict"] == "worse" and versus["difference"] is None
    # Only the baseline diverged on a seed the entry finished: better; with a direction of min too.
    versus = compare_with_divergences({1: 0.9, 2: 0.8}, {1: 0.7}, baseline_diverged=[2],
                                      direction="min")
    assert versus["verdict"] == "better" and versus["baseline_diverged_seeds"] == [2]
    # No divergence: the plain paired comparison.
    assert compare_with_divergences(baseline, baseline) == paired_comparison(baseline,
                                                                              baseline).as_dict()


def test_majority_counts():
    assert majority(["too_high", "good", "too_high"]) == ("too_high", 2, 3)
    assert majority(["good", "too_low"]) == ("good", 1, 2)
    assert majority([]) == ("-", 0, 0)


def test_parse_seeds():
    from common.evidence import parse_seeds

    assert parse_seeds(None, 42) == [42]
    assert parse_seeds("3", 42) == [42, 43, 44]
    assert parse_seeds("42,7,1", 0) == [42, 7, 1]
    for bad in ("0", "x", "1,1", "-2"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad, 42)


def test_train_with_seeds_runs_each_seed_and_prints_the_spread(tmp_path, capsys,
                                                                sentiment_folder):
    from common.cli import main

    code = main(["train", "sentiment", "--smoke", "--data", str(sentiment_folder), "--output",
                 str(tmp_path / "runs"), "--run-name", "s", "--seeds", "2", "--seed", "5",
                 "--verbose", "0"])
    out = capsys.readouterr().out
    assert code == 0
    runs = tmp_path / "runs" / "sentiment"
    assert sorted(p.name for p in runs.iterdir()) == ["s-seed-5", "s-seed-6"]
    line = next(x for x in out.splitlines() if x.startswith("val_accuracy over seeds 5, 6:"))
    assert "±" in line and "n=2" in line
    tests = [json.loads((runs / f"s-seed-{s}" / "summary.json").read_text())["test_accuracy"]
             for s in (5, 6)]
    line = next(x for x in out.splitlines() if x.startswith("test_accuracy over seeds 5, 6:"))
    assert line.split(": ")[1].startswith(f"{sum(tests) / 2:.4f} ±")
    assert not any(x.startswith("test_flip_") for x in out.splitlines())  # sentiment: no flips
