"""A tiny sweep on the toy task: U-curve, diverged runs, resume, and a report that holds
every promised section (checked by parsing, not by eye)."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest

from common.errors import UserError
from common.reporting import write_overview, write_sweep_report
from common.runs import read_json
from common.sweep import Sweep, log_rates
from tests.toy_domain import TOY, ToyConfig


class ReportParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.headings, self.images, self.tables, self._tag = [], [], 0, None

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag == "table":
            self.tables += 1

    def handle_data(self, data):
        if self._tag in ("h1", "h2") and data.strip():
            self.headings.append(data.strip())

    def handle_endtag(self, tag):
        self._tag = None


def make_sweep(tmp_path, **kwargs):
    cfg = ToyConfig(epochs=2, output=str(tmp_path), verbose=0, monitor_every=0, log_lr_every=0)
    return Sweep(TOY, cfg, tmp_path / "toy" / "sweeps" / "s1", rates=[1e-6, 0.1, 10.0],
                 schedules=("constant", "cosine"), optimizers=("sgd", "momentum"),
                 range_test_steps=30, announce=kwargs.get("announce", True))


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sweep")
    sweep = make_sweep(tmp_path)
    state = sweep.run()
    write_sweep_report(sweep.dir)
    return tmp_path, sweep, state


def test_the_grid_finds_the_middle_rate_and_marks_the_ends(finished_sweep):
    _, sweep, state = finished_sweep
    assert state["best_rate"] == pytest.approx(0.1)
    verdicts = {name: read_json(sweep.dir / name / "seed-42" / "summary.json") for name in
                ("rate-00-1e-06", "rate-01-0.1", "rate-02-10")}
    assert verdicts["rate-00-1e-06"]["diagnosis"]["verdict"] == "too_low"
    assert verdicts["rate-01-0.1"]["diagnosis"]["verdict"] == "good"
    assert verdicts["rate-02-10"]["status"] == "diverged"
    assert verdicts["rate-02-10"]["diagnosis"]["verdict"] == "too_high"
    # The constant schedule and the base optimizer reuse the grid's run: no duplicate.
    assert not (sweep.dir / "schedule-constant").exists()
    assert (sweep.dir / "schedule-cosine" / "seed-42" / "summary.json").exists()
    assert (sweep.dir / "optimizer-momentum" / "seed-42" / "model.keras").exists()
    # Folder names sort by rate and say it exactly enough.
    names = sorted(p.name for p in sweep.dir.glob("rate-*"))
    rates = [read_json(sweep.dir / n / "seed-42" / "summary.json")["learning_rate"] for n in names]
    assert rates == sorted(rates)


def test_the_report_holds_every_section_and_image(finished_sweep):
    _, sweep, _ = finished_sweep
    page = (sweep.dir / "report.html").read_text()
    parser = ReportParser()
    parser.feed(page)
    joined = " | ".join(parser.headings)
    for section in ("U-curve", "Loss curves per rate", "comparison table, measured",
                    "Schedules at the best rate", "Optimizers at the best rate"):
        assert section in joined, section
    assert len(parser.images) == 4
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    for src in parser.images:  # embedded, real PNGs
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert parser.tables == 4
    assert "name='viewport'" in page and "class='scroll'" in page
    md = (sweep.dir / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 10 |"))
    assert "too high 1/1" in row and "diverged on 1 of 1" in row
    assert re.search(r"Data: toy linear regression.*Budget: 2 epochs x 32 steps, batch 16.*"
                     r"Seeds: 42", md)
    assert "One seed: the schedules' differences are shown, not judged" in md
    assert md.count("Data: toy linear regression") == 1  # the caption is not repeated
    for image in re.findall(r"\]\((plots/[^)]+\.png)\)", md):
        assert (sweep.dir / image).is_file()
    # The measured seed-003 table has the three rate classes filled.
    row = next(line for line in md.splitlines() if line.startswith("| rates with runs in class"))
    assert row.count("|") == 5 and "1e-06" in row and "0.1" in row and "10" in row


def test_a_rerun_resumes_without_training_again(finished_sweep, capsys):
    tmp_path, sweep, _ = finished_sweep
    stamps = {p: p.stat().st_mtime_ns for p in sweep.dir.glob("*/seed-*/summary.json")}
    capsys.readouterr()
    make_sweep(tmp_path).run()
    out = capsys.readouterr().out
    assert out.count("(done before)") == 5 and out.count("(the grid's run") == 2
    assert {p: p.stat().st_mtime_ns for p in sweep.dir.glob("*/seed-*/summary.json")} == stamps


def test_an_identical_plan_with_tuples_is_accepted(tmp_path):
    cfg = ToyConfig(output=str(tmp_path), schedule="drops",
                    schedule_args={"at_epochs": (1.0, 2.0)})
    first = Sweep(TOY, cfg, tmp_path / "s", rates=[0.1, 0.2], schedules=(), optimizers=())
    first.check_plan()
    Sweep(TOY, cfg, tmp_path / "s", rates=[0.1, 0.2], schedules=(), optimizers=()).check_plan()


def test_a_changed_plan_is_refused(finished_sweep):
    tmp_path, sweep, _ = finished_sweep
    other = make_sweep(tmp_path)
    other.rates = [1e-3, 1e-2]
    with pytest.raises(UserError, match="started with other settings"):
        other.run()


def test_rediagnose_reads_the_recorded_runs_again(finished_sweep):
    from common.reporting import rediagnose_sweep

    _, sweep, _ = finished_sweep
    path = sweep.dir / "rate-00-1e-06" / "seed-42" / "summary.json"
    summary = read_json(path)
    summary["diagnosis"]["verdict"] = "good"  # as if judged by older rules
    path.write_text(__import__("json").dumps(summary))
    assert rediagnose_sweep(sweep.dir) == 5  # 3 rates, cosine, momentum
    again = read_json(path)["diagnosis"]
    assert again["verdict"] == "too_low" and again["previous_verdict"] == "good"


def test_overview_page_gathers_the_latest_sweep(finished_sweep):
    tmp_path, _, _ = finished_sweep
    md, page = write_overview(tmp_path)
    assert "| toy |" in md.read_text() and "data:image/png;base64," in page.read_text()


def test_log_rates_and_bad_bounds():
    assert log_rates(1e-4, 1.0, 5) == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    with pytest.raises(UserError, match="0 < min < max"):
        log_rates(1.0, 1e-3, 5)
