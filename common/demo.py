"""`lrsuite demo` / `make demo`: a small sweep in every domain on generated data, offline.

Each domain's `write_demo_data` (declared on its Domain) writes a small dataset in its own
local format (described in the reports); each domain then runs a short sweep (range test, a grid of
rates, two
schedules) with its tiny preset, and one page gathers the results.
"""

from __future__ import annotations

import time
from pathlib import Path

from common.domain import domain_names, get_domain
from common.errors import UserError
from common.reporting import write_overview, write_sweep_report
from common.sweep import Sweep, log_rates

DEMO_RATES = log_rates(1e-5, 3.0, 5)


def run_demo(output: Path, domains: list[str] | None = None) -> Path:
    started = time.perf_counter()
    chosen = [get_domain(name) for name in domains or domain_names()]
    if domains:  # asked for by name: each must supply demo data
        for domain in chosen:
            if domain.write_demo_data is None:
                raise UserError(f"--domains: {domain.name} has no demo data "
                                "(its Domain declares no write_demo_data).")
    for domain in (d for d in chosen if d.write_demo_data is not None):
        name = domain.name
        data = domain.write_demo_data(output / "demo-data" / name)
        cfg = domain.config_cls.smoke(data=str(data), output=str(output), verbose=0,
                                      **domain.demo_overrides)
        sweep_dir = output / name / "sweeps" / "demo"
        print(f"== {name}: generated data in {data}", flush=True)
        Sweep(domain, cfg, sweep_dir, rates=DEMO_RATES, schedules=("constant", "one_cycle"),
              optimizers=(), range_test_steps=40).run()
        write_sweep_report(sweep_dir)
    md, page = write_overview(output)
    print(f"demo finished in {time.perf_counter() - started:.0f} s; report: {page}")
    return page
