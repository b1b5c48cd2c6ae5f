"""A real sweep report in headless Chromium at phone and desktop width: nothing runs off
the side of the page (wide tables scroll in their own box) and every figure loads.

Chromium is Debian's `chromium` package; `.ci/run` installs it when apt-get can, and the
test is skipped with that reason where it is absent."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from common.reporting import write_sweep_report
from common.sweep import Sweep
from tests.toy_domain import TOY, ToyConfig

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = """<script>window.addEventListener('load', function () {
  var images = Array.from(document.images);
  var result = {page: document.documentElement.scrollWidth, screen: window.innerWidth,
                images: images.length,
                loaded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length};
  var out = document.createElement('pre'); out.id = 'probe';
  out.textContent = JSON.stringify(result); document.body.appendChild(out);
});</script>"""

pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="Chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    cfg = ToyConfig(epochs=2, output=str(folder), verbose=0, monitor_every=0, log_lr_every=0)
    sweep = Sweep(TOY, cfg, folder / "a-sweep-with-a-rather-long-folder-name-for-the-path",
                  rates=[1e-4, 0.1, 10.0], schedules=("constant", "cosine"),
                  optimizers=("sgd", "momentum"), range_test_steps=30, seeds=[1, 2])
    sweep.run()
    _, page = write_sweep_report(sweep.dir)
    probed = folder / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    return probed


@pytest.mark.parametrize("width", [400, 1400])
def test_the_report_fits_the_screen_and_every_figure_loads(report_page, width):
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},900",
         "--virtual-time-budget=5000", "--dump-dom", report_page.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">([^<]*)</pre>', result.stdout)
    assert found, result.stderr[-2000:]
    probe = json.loads(found.group(1))
    # Headless Chromium lays a page out no narrower than 500 px, still a phone's width.
    assert probe["screen"] == max(width, 500)
    assert probe["page"] <= probe["screen"], probe  # no horizontal overflow
    assert probe["images"] == 4 and probe["loaded"] == 4, probe
