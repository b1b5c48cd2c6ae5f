"""Cost of the sharpness probe: a short training run with `SharpnessProbe` every 10, 50
and 200 steps against the same run without it, as a ratio of wall times.

Same compiled model, data and batch size; the variants alternate in one process (bench_common
.alternate_rounds), so machine noise hits all alike. The probe's power iteration is traced
once per model before the rounds (a run pays that once; it is printed apart). Besides the
ratios of whole fits, it times probes and steps on their own, which gives the cost of one
probe in training steps and the interval at which the probe costs TARGET_OVERHEAD of a run,
a figure that is steadier than the fit ratios on a loaded machine.

    python bench/sharpness_overhead.py [DOMAIN] [--data DIR] [--small] [--steps 400]
        [--rounds 3] [--every 10,50,200] [--quick] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import bench_common as bc
from run_all import cpu_model

from common.sharpness import HessianProbe, measure
from common.sharpness_callback import SharpnessProbe
from common.training import _probe_batch

TARGET_OVERHEAD = 0.05  # the bar for a default interval: under 5% of a run


def probe_and_step_times(model, bundle, probe_batch, loss_fn, repeats: int) -> tuple:
    """(median seconds per probe, median power iterations, seconds per training step)."""
    probe = HessianProbe(model, loss_fn)
    times, iterations = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        reading = measure(probe, model.optimizer, probe_batch)
        times.append(time.perf_counter() - started)
        iterations.append(reading["iterations"] if reading else 0)
        model.fit(bundle.train, epochs=1, steps_per_epoch=20, verbose=0)  # move the weights
    step = 1.0 / bc.steps_per_second(
        lambda n: model.fit(bundle.train, epochs=1, steps_per_epoch=n, verbose=0), 50)
    return statistics.median(times), statistics.median(iterations), step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domain", nargs="?", default="sentiment")
    parser.add_argument("--data", default=None, help="the domain's data (default: its real "
                        "data under ../shared/data)")
    parser.add_argument("--small", action="store_true", help="the domain's small model")
    parser.add_argument("--steps", type=int, default=400, help="steps per timed fit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--every", default="10,50,200", help="probe intervals, joined by ','")
    parser.add_argument("--quick", action="store_true", help="200 steps, 2 rounds")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 200, 2
    intervals = [int(v) for v in args.every.split(",")]
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores, load average "
          f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)

    domain = bc.get_domain(args.domain)
    small = args.small or args.domain in bc.SLOW_STEP_DOMAINS
    cfg = bc.bench_config(domain, args.data or bc.real_data(args.domain), small=small)
    bundle = domain.load_data(cfg)
    model = bc.compiled_model(domain, cfg, bundle)
    model.fit(bundle.train, epochs=1, steps_per_epoch=10, verbose=0)  # trace the step
    probe_batch, loss_fn = _probe_batch(bundle), domain.loss(cfg)
    started = time.perf_counter()
    measure(HessianProbe(model, loss_fn), model.optimizer, probe_batch)  # trace the probe
    trace = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        def fit_with(every: int):
            # One callback per interval, as a run has one: its probes stay warm-started
            # from fit to fit, where a fresh one would pay a cold start in every round.
            probe = SharpnessProbe(Path(tmp) / f"every{every}", every, probe_batch, loss_fn) \
                if every else None

            def run() -> float:
                callbacks = [probe] if probe else []
                started = time.perf_counter()
                model.fit(bundle.train, epochs=1, steps_per_epoch=args.steps, verbose=0,
                          callbacks=callbacks)
                return time.perf_counter() - started
            return run

        times = bc.alternate_rounds({every: fit_with(every) for every in [0, *intervals]},
                                    args.rounds)
    per_probe, iterations, per_step = probe_and_step_times(model, bundle, probe_batch, loss_fn,
                                                           repeats=5)
    probe_in_steps = per_probe / per_step
    break_even = probe_in_steps / TARGET_OVERHEAD

    off = bc.median(times[0])
    rows = []
    for every in intervals:
        ratio = bc.median(times[every]) / off
        predicted = 1 + probe_in_steps / every
        rows.append([every, f"{bc.median(times[every]):.2f} ({bc.spread(times[every])})",
                     f"**{ratio:.2f}**", f"{predicted:.2f}"])
    print(f"{args.domain} ({bc.config_label(cfg, small)}, {cfg.optimizer}): off "
          f"{off:.2f} s per {args.steps} steps; tracing the probe once {trace:.2f} s; one "
          f"probe {per_probe * 1e3:.0f} ms ({iterations:g} power iterations, median) = "
          f"{probe_in_steps:.1f} training steps of {per_step * 1e3:.1f} ms; under "
          f"{TARGET_OVERHEAD:.0%} of a run from every {break_even:.0f} steps", flush=True)
    bc.emit_table(
        f"wall time of {args.steps} training steps with the sharpness probe against without",
        ["probe every N steps", "s per fit (rounds)", "ratio to off", "predicted from probe cost"],
        rows,
        notes=f"{args.domain}, {bc.config_label(cfg, small)}, {cfg.optimizer}; off: "
        f"{off:.2f} s ({bc.spread(times[0])}). Medians of {args.rounds} alternating rounds. "
        f"One probe: {per_probe * 1e3:.0f} ms, {iterations:g} power iterations (warm-started), "
        f"{probe_in_steps:.1f} steps' worth; under {TARGET_OVERHEAD:.0%} from every "
        f"{break_even:.0f} steps. Tracing once per model: {trace:.2f} s.",
        markdown_path=args.markdown)


if __name__ == "__main__":
    main()
