"""`lrsuite`: train, lr-find, sweep, tune, report, demo, schedules, and the commands the
domains declare (`Domain.commands`, e.g. translate). Every command runs the one training path.

Bad input prints one line `lrsuite: error: ...` and exits 2, with no traceback.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from common.cpu_allocator import prefer_pooled_allocator  # imports no TensorFlow

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
prefer_pooled_allocator()


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with its native start-up chatter (printed to fd 2 before any
    log level applies) sent to /dev/null, so that an error stays one line."""
    if "tensorflow" in sys.modules:
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow

            # Device discovery initialises CUDA, which prints an error on machines
            # that have its libraries but no GPU.
            tensorflow.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)


_import_tensorflow_quietly()

from common.cli_args import OneLineParser, add_seeds_argument  # noqa: E402
from common.cli_domain import (  # noqa: E402
    build_config,
    domain_parser,
    print_view_hint,
    split_domain,
)
from common.domain import domain_commands, domain_names, get_domain  # noqa: E402
from common.errors import UserError  # noqa: E402

USAGE = """lrsuite COMMAND ...

commands:
  train DOMAIN [options]        train one run (domains: {domains})
  lr-find DOMAIN [options]      learning-rate range test: plot, curve and suggestion
  sweep DOMAIN [options]        grid of rates, then schedules and optimizers; writes a report
  tune DOMAIN [options]         Keras Tuner search (hyperband|random|grid|bayesian|pbt); resumable
  compare DOMAIN [options]      --preset rate-free: rate-free methods against the tuned rate
  report [--output runs]        one page with the latest sweep of every domain
  report --searches A,B[,...]   finished searches of one domain compared (compute, anytime)
  demo [--output runs/demo]     short sweeps in every domain on generated data, offline
  schedules                     list the learning-rate schedules and their parameters
  schedules plot NAME [K=V ...] write a PNG of a schedule's rate over training
{domain_commands}
'lrsuite COMMAND --help' shows the options of a command; 'lrsuite --version' the version."""


def usage() -> str:
    extra = "".join(f"  {f'{c.name} {c.usage}':<30}{c.summary}\n"
                    for c in domain_commands().values())
    return USAGE.format(domains=", ".join(domain_names()), domain_commands=extra)


def version() -> str:
    """The installed distribution's version; a source tree that was never installed says so."""
    from importlib import metadata

    try:
        return metadata.version("lr-suite")
    except metadata.PackageNotFoundError:
        return "0+unknown (not installed: pip install -e .)"


def cmd_train(argv: list[str]) -> int:
    from common.training import run_training

    name, rest = split_domain("train", argv)
    domain, parser = domain_parser("train", name)
    parser.add_argument("--from-best", default=None, metavar="SEARCH_DIR",
                        help="start from the winner of a finished 'lrsuite tune' search "
                             "(its values and budget; flags given here go on top)")
    add_seeds_argument(parser, "train once per seed (runs <name>-seed-<s>) and print the "
                               "objective's mean, sd and range over them")
    known, _ = parser.parse_known_args(rest)
    base = None
    if known.from_best:
        from common.tuning import config_overrides_from_best

        base = config_overrides_from_best(known.from_best)
    namespace, cfg = build_config(domain, parser, rest, base=base)
    from common.evidence import parse_seeds, spread
    from common.lr_finder import resolve_learning_rate
    from common.runs import default_run_name

    try:
        seeds = parse_seeds(namespace.seeds, cfg.seed)
    except ValueError as error:
        raise UserError(str(error)) from None
    if len(seeds) > 1 and not cfg.run_name:
        cfg = cfg.replace(run_name=default_run_name(cfg.optimizer, cfg.schedule,
                                                    cfg.learning_rate))
    metric = domain.objective.removeprefix("val_")
    shown_keys = (domain.objective, f"test_{metric}", f"test_flip_{metric}")
    values: dict[str, list[float]] = {key: [] for key in shown_keys}
    status = "completed"
    for seed in seeds:
        seed_cfg = cfg if len(seeds) == 1 else cfg.replace(
            seed=seed, run_name=f"{cfg.run_name}-seed-{seed}")
        # Loaded here only for a range test to share with the run; a resume is checked first.
        needs_range_test = seed_cfg.learning_rate == "auto" and not seed_cfg.resume
        bundle = domain.load_data(seed_cfg) if needs_range_test else None
        requested = seed_cfg.learning_rate
        seed_cfg, range_test, run_dir = resolve_learning_rate(domain, seed_cfg, bundle=bundle)
        result = run_training(domain, seed_cfg, bundle=bundle, run_dir=run_dir,
                              range_test=range_test, requested_learning_rate=requested)
        print_view_hint(result.run_dir)
        for key in shown_keys:
            value = result.summary.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values[key].append(value)
        status = result.summary["status"]
        if status == "interrupted":
            return 130
    if len(seeds) > 1:
        for key in shown_keys:
            if key != domain.objective and not values[key]:
                continue  # a domain without a test split, or without flips
            over = spread(values[key])
            shown = (f"{over.mean:.4f} ± {over.sd:.2g} [{over.low:.4f}, {over.high:.4f}], "
                     f"n={over.n}" if over and over.sd is not None
                     else "too few finished runs to judge")
            print(f"{key} over seeds {', '.join(map(str, seeds))}: {shown}")
    return 0


def cmd_lr_find(argv: list[str]) -> int:
    from common.evidence import parse_seeds
    from common.lr_finder import SUGGESTION_RULES, check_range_test_args, find_learning_rate
    from common.runs import create_run_dir

    name, rest = split_domain("lr-find", argv)
    domain, parser = domain_parser("lr-find", name)
    extra = parser.add_argument_group("range test")
    extra.add_argument("--start-lr", type=float, default=1e-7, help="first rate (default 1e-7)")
    extra.add_argument("--end-lr", type=float, default=10.0, help="last rate (default 10)")
    extra.add_argument("--num-steps", type=int, default=100, help="steps in the ramp (default 100)")
    extra.add_argument("--rule", choices=SUGGESTION_RULES, default="valley",
                       help="suggestion used (default valley)")
    extra.add_argument("--stop-factor", type=float, default=4.0,
                       help="stop when the smoothed loss passes this multiple of its best")
    add_seeds_argument(extra, "run the test once per seed and report how far the suggestion "
                              "moves")
    namespace, cfg = build_config(domain, parser, rest)
    check_range_test_args(namespace.start_lr, namespace.end_lr, namespace.num_steps,
                          namespace.rule, namespace.stop_factor)  # before anything is written
    try:
        seeds = parse_seeds(namespace.seeds, cfg.seed)
    except ValueError as error:
        raise UserError(str(error)) from None
    cfg = cfg.replace(seed=seeds[0])
    bundle = domain.load_data(cfg)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = create_run_dir(Path(cfg.output) / domain.name, cfg.run_name or f"lr-find-{stamp}")
    print(f"run directory: {out_dir}", flush=True)
    options = {"start_lr": namespace.start_lr, "end_lr": namespace.end_lr,
               "num_steps": namespace.num_steps, "rule": namespace.rule,
               "stop_factor": namespace.stop_factor}
    started = time.perf_counter()
    if len(seeds) > 1:
        from common.lr_finder import find_over_seeds

        summary = find_over_seeds(
            domain, cfg, seeds, out_dir=out_dir, **options,
            bundle_for=lambda seed: bundle if seed == seeds[0] else domain.load_data(
                cfg.replace(seed=seed)))
        for seed in seeds:
            print(f"seed {seed:>6}: {summary['suggestions'][str(seed)]:.3g}")
        print(f"median {summary['median']:.3g}; the suggestion moved x"
              f"{summary['max_over_min']:.2g} from lowest to highest over {len(seeds)} seeds; "
              f"plot: {summary['plot']}")
        for seed, warning in summary["warnings"].items():
            print(f"warning (seed {seed}): {warning}")
        print(f"train at it: lrsuite train {domain.name} --lr {summary['median']:.3g}")
        print_view_hint(out_dir, plot=Path(summary["plot"]))
        return 0
    result = find_learning_rate(domain, cfg, bundle=bundle, out_dir=out_dir, **options)
    wall = time.perf_counter() - started
    for rule, rate in result.suggestions.items():
        mark = "  <- suggested" if rule == result.rule else ""
        print(f"{rule:>9}: {rate:.3g}{mark}")
    print(f"{len(result.losses)} steps in {wall:.1f} s"
          f"{' (stopped at divergence)' if result.stopped_early else ''}; "
          f"plot: {result.files['png']}")
    if result.warning:
        print(f"warning: {result.warning}")
    print(f"train at it: lrsuite train {domain.name} --lr {result.suggestion:.3g}")
    print_view_hint(out_dir, plot=Path(result.files["png"]))
    return 0


def cmd_sweep(argv: list[str]) -> int:
    from common.reporting import write_sweep_report
    from common.sweep import DEFAULT_OPTIMIZERS, DEFAULT_SCHEDULES, Sweep, log_rates

    name, rest = split_domain("sweep", argv)
    domain, parser = domain_parser("sweep", name)
    extra = parser.add_argument_group("sweep")
    extra.add_argument("--name", default=None, help="sweep name (default: a time stamp); "
                       "re-run with the same name to resume")
    extra.add_argument("--min-lr", type=float, default=1e-5, help="lowest rate of the grid (1e-5)")
    extra.add_argument("--max-lr", type=float, default=1.0, help="highest rate of the grid (1)")
    extra.add_argument("--num-rates", type=int, default=7, help="rates in the grid (7)")
    extra.add_argument("--rates", default=None, help="explicit rates, comma-separated")
    extra.add_argument("--schedules", default=",".join(DEFAULT_SCHEDULES),
                       help="schedules compared at the best rate, joined by ',' ('' for "
                            "none; default: %(default)s)")
    extra.add_argument("--optimizers", default=",".join(DEFAULT_OPTIMIZERS),
                       help="optimizers compared at the best rate, joined by ',' ('' for "
                            "none; default: %(default)s)")
    extra.add_argument("--range-test-steps", type=int, default=100,
                       help="steps of the LR range test the sweep runs first; its "
                            "suggestion is drawn on the report's U-curve (default: "
                            "%(default)s)")
    add_seeds_argument(extra, "run every point once per seed and compare them in pairs")
    extra.add_argument("--keep-early-stopping", action="store_true",
                       help="keep the domain's early stopping in the sweep's runs (off by "
                            "default: a schedule is compared over its whole horizon)")
    extra.add_argument("--batch-sizes", default=None, metavar="B1,B2,...",
                       help="run the rate grid at each batch size (same epochs, so fewer steps "
                            "at larger batches) and fit the best rate against the batch size; "
                            "schedules and optimizers are not compared then")
    namespace, cfg = build_config(domain, parser, rest)
    from common.evidence import parse_seeds

    try:
        seeds = parse_seeds(namespace.seeds, cfg.seed)
    except ValueError as error:
        raise UserError(str(error)) from None
    if not namespace.keep_early_stopping:
        cfg = cfg.replace(early_stopping=0)
    if namespace.rates:
        try:
            rates = sorted(float(r) for r in namespace.rates.split(",") if r.strip())
        except ValueError:
            raise UserError("--rates must be numbers joined by ','. "
                            f"Received: {namespace.rates!r}") from None
        if len(rates) < 2 or min(rates) <= 0:
            raise UserError(f"--rates needs at least 2 rates > 0. Received: {namespace.rates!r}")
    else:
        rates = log_rates(namespace.min_lr, namespace.max_lr, namespace.num_rates)
    schedules = tuple(x for x in namespace.schedules.split(",") if x)
    optimizers = tuple(x for x in namespace.optimizers.split(",") if x)
    try:  # validate every name before anything runs
        for schedule in schedules:
            cfg.replace(schedule=schedule, schedule_args={})
        for optimizer in optimizers:
            cfg.replace(optimizer=optimizer)
    except ValueError as error:
        raise UserError(str(error)) from None
    from common.batch_scaling import parse_batch_sizes, run_batch_size_sweep

    batch_sizes = None if namespace.batch_sizes is None else parse_batch_sizes(namespace.batch_sizes)
    sweep_name = namespace.name or time.strftime("%Y%m%d-%H%M%S")
    sweep_dir = Path(cfg.output) / domain.name / "sweeps" / sweep_name
    print(f"sweep directory: {sweep_dir}", flush=True)
    if batch_sizes is not None:
        md = run_batch_size_sweep(
            domain, cfg.replace(verbose=0, seed=seeds[0]), sweep_dir, batch_sizes=batch_sizes,
            rates=rates, seeds=seeds, range_test_steps=namespace.range_test_steps)
        print(f"report: {md}\n        {md.with_suffix('.html')}")
        return 0
    Sweep(domain, cfg.replace(verbose=0, seed=seeds[0]), sweep_dir, rates=rates,
          schedules=schedules, optimizers=optimizers, seeds=seeds,
          range_test_steps=namespace.range_test_steps).run()
    md, page = write_sweep_report(sweep_dir)
    print(f"report: {md}\n        {page}")
    print_view_hint(sweep_dir, report=page)
    return 0


def cmd_report(argv: list[str]) -> int:
    from common.reporting import write_overview, write_sweep_report

    parser = OneLineParser(prog="lrsuite report",
                           description="Write the cross-domain report, or one sweep's report.")
    parser.add_argument("--output", default="runs", help="runs folder (default runs/)")
    parser.add_argument("--sweep", default=None, help="re-write the report of this sweep folder")
    parser.add_argument("--rediagnose", action="store_true",
                        help="with --sweep: diagnose its runs again with the current rules")
    parser.add_argument("--searches", default=None, metavar="DIR1,DIR2,...",
                        help="compare finished searches of one domain (compute, anytime "
                             "curves, confirmed winners) on one page")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="with --searches: where to write searches.md/.html "
                             "(default: the first search's parent folder)")
    namespace = parser.parse_args(argv)
    if namespace.searches:
        from common.search_comparison import compare_searches

        folders = [Path(p) for p in namespace.searches.split(",") if p.strip()]
        md, page = compare_searches(folders, Path(namespace.out) if namespace.out else None)
    elif namespace.sweep:
        if not (Path(namespace.sweep) / "sweep.json").is_file():
            raise UserError(f"{namespace.sweep}: no sweep.json there; pass a sweep folder.")
        if namespace.rediagnose:
            from common.reporting import rediagnose_sweep

            print(f"diagnosed {rediagnose_sweep(Path(namespace.sweep))} runs again")
        md, page = write_sweep_report(Path(namespace.sweep))
    else:
        written = write_overview(Path(namespace.output))
        if written is None:
            raise UserError(f"{namespace.output}: no finished sweep found; run "
                            "'make sweep-<domain>' first.")
        md, page = written
    print(f"report: {md}\n        {page}")
    return 0


def cmd_demo(argv: list[str]) -> int:
    from common.demo import run_demo

    parser = OneLineParser(prog="lrsuite demo",
                           description="Short sweeps in every domain on generated data (offline).")
    parser.add_argument("--output", default="runs/demo", help="folder (default runs/demo)")
    parser.add_argument("--domains", default=None, help="comma-separated subset")
    namespace = parser.parse_args(argv)
    domains = namespace.domains.split(",") if namespace.domains else None
    for name in domains or []:
        get_domain(name)  # unknown names fail before anything runs
    run_demo(Path(namespace.output), domains)
    return 0


def cmd_schedules(argv: list[str]) -> int:
    from common.schedule_registry import SPECS

    if not argv or argv[0] in ("list",):
        for spec in SPECS.values():
            print(f"{spec.name:16} {spec.summary}")
            for param in spec.params:
                default = param.default
                if isinstance(default, tuple):
                    default = ",".join(f"{v:g}" for v in default)
                print(f"{'':18}{param.name}={default}  {param.help}")
        print("\nUse: lrsuite train DOMAIN --schedule NAME [--warmup-epochs E] "
              "[--schedule-arg KEY=VALUE ...]")
        return 0
    if argv[0] in ("-h", "--help"):
        print("usage: lrsuite schedules [list]\n       lrsuite schedules plot NAME [KEY=VALUE ...] "
              "[--lr R] [--epochs E] [--steps-per-epoch S] [--warmup-epochs W] [--out FILE]")
        return 0
    if argv[0] != "plot":
        raise UserError(f"unknown schedules command {argv[0]!r}. Expected: list, plot")
    from common.schedule_plot import plot_schedule_command

    return plot_schedule_command(argv[1:])


def cmd_tune(argv: list[str]) -> int:
    from common.tune_cli import cmd_tune as run_tune

    return run_tune(argv)


def cmd_compare(argv: list[str]) -> int:
    from common.compare_cli import cmd_compare as run_compare

    return run_compare(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-V", "--version"):
        print(f"lrsuite {version()}")
        return 0
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    handlers = {"train": cmd_train, "lr-find": cmd_lr_find, "sweep": cmd_sweep,
                "report": cmd_report, "schedules": cmd_schedules, "demo": cmd_demo,
                "tune": cmd_tune, "compare": cmd_compare}
    try:
        if command not in handlers:  # a command a domain declares (imports the domains)
            handlers.update({name: c.run for name, c in domain_commands().items()})
        if command not in handlers:
            raise UserError(f"unknown command {command!r}. Expected one of: {', '.join(handlers)}")
        code = handlers[command](rest)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here
        return code
    except BrokenPipeError:
        # The reader (e.g. `| head`) left: the Python docs' recipe points stdout at devnull
        # so that the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except UserError as error:
        print(f"lrsuite: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("lrsuite: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exit_request:  # argparse's --help and flag errors
        code = exit_request.code
        return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
