"""The sweep's sharpness plot: one solid and one dashed line per rate that was probed."""

from __future__ import annotations

import csv
import json

from common.sharpness_callback import SHARPNESS_CSV, SHARPNESS_FIELDS
from common.sharpness_report import plot_sweep_sharpness, read_curve, sharpness_figure


def write_run(folder, rate, sharpness_values):
    folder.mkdir(parents=True)
    threshold = 2 / rate
    (folder / "summary.json").write_text(json.dumps(
        {"learning_rate": rate, "sharpness": {"rule": "2/lr", "records": []}}))
    with (folder / SHARPNESS_CSV).open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(SHARPNESS_FIELDS)
        for step, value in enumerate(sharpness_values):
            writer.writerow([step * 10, 0, rate, value, threshold, value / threshold])
    return folder


def test_the_plot_has_a_sharpness_and_a_threshold_line_per_probed_rate(tmp_path):
    runs = [write_run(tmp_path / "a", 0.1, [1.0, 5.0, 19.0, 21.0]),
            write_run(tmp_path / "b", 1.0, [1.0, 3.0, 8.0, 9.0]),
            tmp_path / "unprobed"]
    runs[2].mkdir()
    path = plot_sweep_sharpness(runs, tmp_path / "report" / "sharpness.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves = [read_curve(r) for r in runs[:2]]
    axis = sharpness_figure(curves).axes[0]
    lines = axis.get_lines()
    assert len(lines) == 4 and axis.get_yscale() == "log"
    dashed = [line for line in lines if line.get_linestyle() == "--"]
    assert sorted(float(line.get_ydata()[0]) for line in dashed) == [2.0, 20.0]
    assert "lr 0.1: 2/lr" in [line.get_label() for line in dashed]


def test_no_plot_without_readings(tmp_path):
    (tmp_path / "run").mkdir()
    assert plot_sweep_sharpness([tmp_path / "run"], tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()
