"""XLA on and off: compile time and steps per second of each domain's model.

For each setting, a fresh model is compiled, the first step (tracing and compilation) is
timed on its own, then `--steps` further steps; the settings alternate over `--rounds`.
Batches whose shapes vary (translation pads each batch to its own length) make XLA
compile again for every new shape; those compilations count in its steps/s, as they do
in training.

    python bench/compiled_step.py [DOMAIN ...] [--data DIR] [--steps 100] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import time

import bench_common as bc

from common.seed import set_seed
from common.training import compile_model, plan_schedule, steps_per_epoch_for


def measure_domain(name: str, data: str | None, *, small: bool, steps: int,
                   rounds: int) -> list[object]:
    domain = bc.get_domain(name)
    base = bc.bench_config(domain, data or bc.real_data(name), small=small)
    bundle = domain.load_data(base)
    steps_per_epoch = steps_per_epoch_for(base, bundle)

    def run(setting: str):
        cfg = base.replace(jit_compile=setting)
        set_seed(cfg.seed)
        model = domain.build_model(cfg, bundle)
        plan = plan_schedule(cfg, cfg.learning_rate, steps_per_epoch)
        compile_model(domain, cfg, model, plan.learning_rate, bundle)
        started = time.perf_counter()
        model.fit(bundle.train, epochs=1, steps_per_epoch=1, verbose=0)
        first = time.perf_counter() - started
        rate = bc.steps_per_second(
            lambda n: model.fit(bundle.train, epochs=1, steps_per_epoch=n, verbose=0), steps)
        return first, rate

    # alternate_rounds keeps one number per call; keep the first-step time beside it.
    first_steps: dict[str, list[float]] = {"off": [], "on": []}

    def measured(setting: str):
        def call() -> float:
            first, rate = run(setting)
            first_steps[setting].append(first)
            return rate
        return call

    rates = bc.alternate_rounds({"off": measured("off"), "on": measured("on")}, rounds)
    off, on = max(rates["off"]), max(rates["on"])
    print(f"{name}: XLA off first step {min(first_steps['off']):.2f} s, {off:.1f} steps/s; "
          f"XLA on first step {min(first_steps['on']):.2f} s, {on:.1f} steps/s; "
          f"ratio on/off {on / off:.3f}", flush=True)
    return [name, bc.config_label(base, small), f"{min(first_steps['off']):.2f}", f"{off:.1f}",
            f"{min(first_steps['on']):.2f}", f"{on:.1f}", f"**{on / off:.2f}**"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domains", nargs="*", metavar="DOMAIN",
                        help="domains to measure (default: all four)")
    parser.add_argument("--data", default=None, help="data of the one DOMAIN given "
                        "(default: its real data under ../shared/data)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="few steps, one round; small models where XLA compiles slowly")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 20, 1
    rows = []
    for name in bc.parse_domains(args.domains, args.data):
        small = args.quick and name in bc.SLOW_STEP_DOMAINS
        rows.append(measure_domain(name, args.data, small=small, steps=args.steps,
                                   rounds=args.rounds))
    bc.emit_table(
        "XLA (jit_compile) off and on: first step and steps/s",
        ["domain", "config", "off: first step s", "off: steps/s", "on: first step s",
         "on: steps/s", "steps/s on/off"],
        rows,
        notes=f"Fresh model per setting; first step (trace + compile) timed alone, then "
        f"{args.steps} steps; best of {args.rounds} alternating round(s). Ratio above 1: "
        "XLA pays off once compiled.",
        markdown_path=args.markdown)


if __name__ == "__main__":
    main()
