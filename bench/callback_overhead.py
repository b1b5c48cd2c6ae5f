"""Overhead of the suite's per-step callbacks against a bare `model.fit`, per domain.

Same compiled model, same data, same batch size; the two variants alternate in one
process, so machine noise hits both alike. Each round times two fits of N and 3N steps:
their difference gives steps/s without the once-per-fit set-up, which is printed apart
(seconds a run pays once). Prints steps/s of each and the ratio of their medians (1.0 = free).
The callbacks are those every training run
gets: the rate and batch-loss recorder, the divergence watch, TensorBoard and the
update-ratio monitor (every `--monitor-every` steps).

Steps per round are set from a first timing so that a round lasts `--seconds` (at least
`--monitor-every` steps, so the monitor runs in every round).

    python bench/callback_overhead.py [DOMAIN ...] [--data DIR] [--rounds 3] [--seconds 15] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import bench_common as bc
import keras

from common import callbacks as cb
from common.training import _probe_batch, compile_model, plan_schedule, steps_per_epoch_for


def suite_callbacks(log_dir: Path, bundle, domain, cfg, monitor_every: int, schedule):
    recorder = cb.StepRecorder(log_dir / "train", log_dir / "steps.csv", log_every=10,
                               schedule=schedule)
    callbacks = [recorder, cb.DivergenceWatch(recorder),
                 keras.callbacks.TensorBoard(log_dir=str(log_dir))]
    if monitor_every:
        callbacks.append(cb.TrainingDynamics(log_dir / "train", monitor_every,
                                             _probe_batch(bundle.fresh_train()), domain.loss(cfg)))
    return callbacks


def measure_domain(name: str, data: str | None, *, small: bool, seconds: float, rounds: int,
                   monitor_every: int) -> list[object]:
    domain = bc.get_domain(name)
    cfg = bc.bench_config(domain, data or bc.real_data(name), small=small)
    bundle = domain.load_data(cfg)
    model = domain.build_model(cfg, bundle)
    plan = plan_schedule(cfg, cfg.learning_rate, steps_per_epoch_for(cfg, bundle))
    compile_model(domain, cfg, model, plan.learning_rate, bundle)
    model.fit(bundle.train, epochs=1, steps_per_epoch=10, verbose=0)  # trace once
    steps = bc.steps_for_seconds(
        lambda n: model.fit(bundle.train, epochs=1, steps_per_epoch=n, verbose=0), seconds,
        minimum=max(monitor_every, 5))

    with tempfile.TemporaryDirectory() as tmp:
        round_numbers = itertools.count()  # a fresh log folder for every fit

        def fit_with(callbacks_for):
            def run() -> tuple[float, float]:
                # Two fits with fresh callbacks, of `steps` and 3 x `steps`: both pay the
                # once-per-fit set-up (writers, TensorBoard's graph, tracing the gradient
                # probe), so their difference is the cost of 2 x `steps` steps alone.
                times = []
                for count in (steps, 3 * steps):
                    callbacks = callbacks_for(Path(tmp) / f"fit{next(round_numbers)}")
                    started = time.perf_counter()
                    model.fit(bundle.train, epochs=1, steps_per_epoch=count, verbose=0,
                              callbacks=callbacks)
                    times.append(time.perf_counter() - started)
                per_step = max(times[1] - times[0], 1e-9) / (2 * steps)
                return 1.0 / per_step, times[0] - steps * per_step
            return run

        results = bc.alternate_rounds({
            "bare": fit_with(lambda _: []),
            "suite": fit_with(lambda log_dir: suite_callbacks(
                log_dir, bundle, domain, cfg, monitor_every, plan.learning_rate)),
        }, rounds)
    rates = {name: [rate for rate, _ in values] for name, values in results.items()}
    setup = {name: bc.median([fixed for _, fixed in values]) for name, values in results.items()}
    bare, suite = bc.median(rates["bare"]), bc.median(rates["suite"])
    extra_setup = setup["suite"] - setup["bare"]
    print(f"{name}: {steps} + {3 * steps} steps per round; bare {bare:.1f} steps/s (rounds "
          f"{bc.spread(rates['bare'])}), with suite callbacks {suite:.1f} "
          f"({bc.spread(rates['suite'])}), ratio {suite / bare:.3f}; callbacks' set-up "
          f"{extra_setup:+.2f} s per fit", flush=True)
    return [name, bc.config_label(cfg, small), steps, f"{bare:.1f} ({bc.spread(rates['bare'])})",
            f"{suite:.1f} ({bc.spread(rates['suite'])})", f"**{suite / bare:.2f}**",
            f"{extra_setup:+.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domains", nargs="*", metavar="DOMAIN",
                        help="domains to measure (default: all four)")
    parser.add_argument("--data", default=None, help="data of the one DOMAIN given "
                        "(default: its real data under ../shared/data)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="length of a round; sets the steps per round per domain")
    parser.add_argument("--monitor-every", type=int, default=50)
    parser.add_argument("--quick", action="store_true",
                        help="few steps and rounds; small models where a step is slow")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    args = parser.parse_args()
    if args.quick:
        # Monitor every 20 steps (training: 50) so short rounds still include it.
        args.seconds, args.rounds, args.monitor_every = 4.0, 2, 20
    rows = []
    for name in bc.parse_domains(args.domains, args.data):
        small = args.quick and name in bc.SLOW_STEP_DOMAINS
        rows.append(measure_domain(name, args.data, small=small, seconds=args.seconds,
                                   rounds=args.rounds, monitor_every=args.monitor_every))
    bc.emit_table(
        "steps/s: bare model.fit against model.fit with the suite's callbacks",
        ["domain", "config", "steps/fit (and 3x)", "bare steps/s (rounds)",
         "with callbacks steps/s (rounds)", "ratio per step", "callbacks' set-up, s per fit"],
        rows,
        notes=f"Medians of {args.rounds} alternating rounds on the real data; a round is two "
        "fits with fresh callbacks, of N and 3N steps, and steps/s is read from their "
        "difference, so the once-per-fit set-up (log writers, TensorBoard's graph, tracing "
        "the gradient probe) is reported apart, in seconds: a training run pays it once. "
        f"Update-ratio monitor every {args.monitor_every} steps. Ratio 1.0: the callbacks "
        "are free per step.",
        markdown_path=args.markdown)


if __name__ == "__main__":
    main()
