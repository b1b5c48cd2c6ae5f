"""`lrsuite compare DOMAIN --preset rate-free ...`: flags, checks, then common.compare runs
the points and common.compare_report writes the report. Bad flags are one-line UserErrors
raised before anything is written."""

from __future__ import annotations

import time
from pathlib import Path

from common.cli_args import add_seeds_argument
from common.compare import PLAN_FILE, PRESETS, Compare, newest_sweep, rate_free_points, tuned_source
from common.errors import UserError
from common.runs import read_json


def cmd_compare(argv: list[str]) -> int:
    from common.cli_domain import build_config, domain_parser, print_view_hint, split_domain
    from common.compare_report import write_compare_report
    from common.evidence import parse_seeds

    name, rest = split_domain("compare", argv)
    domain, parser = domain_parser("compare", name)
    extra = parser.add_argument_group("compare")
    extra.add_argument("--preset", default=None,
                       help=f"which points to train: {', '.join(PRESETS)} (default tuned, "
                            "schedule-free AdamW, Prodigy, D-Adaptation, DoG and WSD)")
    add_seeds_argument(extra, "run every point once per seed and compare them in pairs with "
                              "tuned")
    extra.add_argument("--from-sweep", default=None, metavar="SWEEP_DIR",
                       help="the sweep whose best rate is the tuned point (default: the "
                            "newest finished sweep of the domain under --output)")
    extra.add_argument("--name", default=None, help="comparison name (default: a time "
                       "stamp); re-run with the same name to resume or add seeds")
    namespace, cfg = build_config(domain, parser, rest)
    if namespace.preset not in PRESETS:
        given = "none given" if namespace.preset is None else f"received {namespace.preset!r}"
        raise UserError(f"--preset must be one of: {', '.join(PRESETS)} ({given}).")
    try:
        seeds = parse_seeds(namespace.seeds, cfg.seed)
    except ValueError as error:
        raise UserError(str(error)) from None
    if cfg.learning_rate == "auto":
        raise UserError("compare trains the default at a number: drop --lr auto (the tuned "
                        "point comes from a sweep, --from-sweep).")
    if cfg.resume:
        raise UserError("compare resumes by itself: drop --resume and re-run with the same "
                        "--name.")
    if namespace.name is not None and (not namespace.name or "/" in namespace.name
                                       or namespace.name in (".", "..")):
        raise UserError(f"--name must be a plain folder name. Received: {namespace.name!r}")
    cfg = cfg.replace(early_stopping=0, verbose=0, seed=seeds[0], run_name=None)
    compare_dir = (Path(cfg.output) / domain.name / "compare"
                   / (namespace.name or time.strftime("%Y%m%d-%H%M%S")))
    sweep_dir = Path(namespace.from_sweep) if namespace.from_sweep else None
    if sweep_dir is None and (compare_dir / PLAN_FILE).exists():
        stored = read_json(compare_dir / PLAN_FILE).get("tuned")  # a rerun keeps its source
        sweep_dir = Path(stored["sweep"]) if stored else None
    elif sweep_dir is None:
        sweep_dir = newest_sweep(Path(cfg.output), domain.name)
    tuned = tuned_source(sweep_dir, domain.name)
    print(f"compare directory: {compare_dir}", flush=True)
    print(f"tuned: {tuned['best_rate']:g} from {tuned['sweep']}" if tuned
          else "tuned = default (no sweep found)", flush=True)
    comparison = Compare(domain, cfg, compare_dir, rate_free_points(cfg, tuned), seeds,
                         preset=namespace.preset, tuned=tuned)
    comparison.run()
    md, page = write_compare_report(compare_dir)
    print(f"report: {md}\n        {page}\n        {compare_dir / 'compare.json'}")
    print_view_hint(compare_dir, report=page)
    return 0
