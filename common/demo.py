"""`lrsuite demo` / `make demo`: a small sweep in every domain on generated data, offline.

Each domain's `demo.py` writes a small dataset in its own local format (described in the
reports); each domain then runs a short sweep (range test, a grid of rates, two
schedules) with its tiny preset, and one page gathers the results.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from common.domain import DOMAIN_MODULES, get_domain
from common.reporting import write_overview, write_sweep_report
from common.sweep import Sweep, log_rates

DEMO_RATES = log_rates(1e-5, 3.0, 5)


def run_demo(output: Path, domains: list[str] | None = None) -> Path:
    started = time.perf_counter()
    for name in domains or sorted(DOMAIN_MODULES):
        domain = get_domain(name)
        demo = importlib.import_module(f"{DOMAIN_MODULES[name]}.demo")
        data = demo.write_demo_data(output / "demo-data" / name)
        cfg = domain.config_cls.smoke(data=str(data), output=str(output), verbose=0,
                                      **demo.OVERRIDES)
        sweep_dir = output / name / "sweeps" / "demo"
        print(f"== {name}: generated data in {data}", flush=True)
        Sweep(domain, cfg, sweep_dir, rates=DEMO_RATES, schedules=("constant", "one_cycle"),
              optimizers=(), range_test_steps=40).run()
        write_sweep_report(sweep_dir)
    md, page = write_overview(output)
    print(f"demo finished in {time.perf_counter() - started:.0f} s; report: {page}")
    return page
