"""The sweep report's sharpness section: present, with its plot and one figure line per
rate, when the probe ran in the grid; absent when it did not."""

from __future__ import annotations

from common.diagnosis import sharpness_figures
from common.reporting import write_sweep_report
from common.runs import read_json
from common.sweep import Sweep
from tests.toy_domain import TOY, ToyConfig


def _report(folder, sharpness_every):
    cfg = ToyConfig(epochs=2, output=str(folder), verbose=0, monitor_every=0, log_lr_every=0,
                    sharpness_every=sharpness_every)
    sweep = Sweep(TOY, cfg, folder / "s", rates=[1e-4, 0.1], schedules=(), optimizers=(),
                  range_test_steps=20)
    sweep.run()
    md, _ = write_sweep_report(sweep.dir)
    return sweep.dir, md.read_text()


def test_the_probe_adds_a_sharpness_section_with_each_rates_figures(tmp_path):
    sweep_dir, text = _report(tmp_path, 2)
    assert "## Sharpness against the stability threshold" in text
    assert (sweep_dir / "plots" / "sharpness.png").read_bytes()[:4] == b"\x89PNG"
    summaries = sorted(sweep_dir.glob("rate-*/seed-42/summary.json"))
    assert len(summaries) == 2
    for summary_path in summaries:
        summary = read_json(summary_path)
        figures = sharpness_figures(summary["sharpness"]["records"])
        assert f"of {figures['readings']} probes over" in text
        assert f"{figures['settled_ratio']:.2g}x at the end" in text


def test_without_the_probe_there_is_no_sharpness_section(tmp_path):
    sweep_dir, text = _report(tmp_path, 0)
    assert "Sharpness against" not in text
    assert not (sweep_dir / "plots" / "sharpness.png").exists()
