"""TensorFlow's CPU allocator: malloc (TensorFlow's default) against the pooled BFC
allocator that lr-suite turns on (`common/cpu_allocator.py`).

The allocator is fixed when TensorFlow starts, so every round is a fresh process with
TF_CPU_ALLOCATOR_USE_BFC set one way or the other, the two alternating (A B, B A, ...).
Each process builds the domain's model on its real data, takes 3 untimed steps, then
times `--steps` training steps on the real input pipeline and reports wall seconds,
user and system CPU seconds per step, and its peak resident memory.

    python bench/cpu_allocator.py [DOMAIN ...] [--steps 10] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import bench_common as bc

SETTINGS = {"malloc": "false", "bfc": "true"}


def measure_in_this_process(domain_name: str, steps: int, small: bool) -> dict:
    from common.seed import set_seed

    domain = bc.get_domain(domain_name)
    cfg = bc.bench_config(domain, bc.real_data(domain_name), small=small)
    set_seed(cfg.seed)
    bundle = domain.load_data(cfg)
    model = bc.compiled_model(domain, cfg, bundle)
    model.make_train_function()
    iterator = iter(bundle.fresh_train())
    bc.train_steps(model, iterator, 3)  # trace, and let the pools grow; not timed
    cpu_before, started = os.times(), time.perf_counter()
    bc.train_steps(model, iterator, steps)
    wall, cpu_after = time.perf_counter() - started, os.times()
    return {
        "wall": wall / steps,
        "user": (cpu_after.user - cpu_before.user) / steps,
        "system": (cpu_after.system - cpu_before.system) / steps,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "config": bc.config_label(cfg, small),
    }


def measure_in_child(domain_name: str, setting: str, steps: int, small: bool) -> dict:
    env = {**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": SETTINGS[setting]}
    command = [sys.executable, __file__, "--child", domain_name, "--steps", str(steps)]
    done = subprocess.run(command + (["--quick"] if small else []), env=env,
                          capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        sys.exit(f"bench: the {setting} process for {domain_name} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domains", nargs="*", help="domains to measure (default: all)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per process")
    parser.add_argument("--rounds", type=int, default=2, help="processes per setting")
    parser.add_argument("--quick", action="store_true",
                        help="small models where the default step is slow, 5 steps, 1 round")
    parser.add_argument("--markdown", help="also write the table here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_in_this_process(args.child, args.steps, args.quick)))
        return
    steps, rounds = (5, 1) if args.quick else (args.steps, args.rounds)
    rows = []
    for name in bc.parse_domains(args.domains, None):
        small = args.quick and name in bc.SLOW_STEP_DOMAINS
        results = bc.alternate_rounds(
            {setting: (lambda s=setting, d=name, q=small: measure_in_child(d, s, steps, q))
             for setting in SETTINGS}, rounds)
        walls = {s: bc.median([r["wall"] for r in results[s]]) for s in SETTINGS}
        systems = {s: bc.median([r["system"] for r in results[s]]) for s in SETTINGS}
        users = {s: bc.median([r["user"] for r in results[s]]) for s in SETTINGS}
        peaks = {s: max(r["peak_rss_mib"] for r in results[s]) for s in SETTINGS}
        rounds_text = {s: ", ".join(f"{r['wall']:.3f}" for r in results[s]) for s in SETTINGS}
        print(f"{name}: " + "; ".join(f"{s} {rounds_text[s]} s/step" for s in SETTINGS),
              flush=True)
        rows.append([
            name, results["bfc"][0]["config"],
            f"{walls['malloc']:.3f} / {walls['bfc']:.3f}",
            f"**{walls['malloc'] / walls['bfc']:.2f}**",
            f"{users['malloc']:.2f} / {users['bfc']:.2f}",
            f"{systems['malloc']:.2f} / {systems['bfc']:.2f}",
            f"{peaks['malloc']:.0f} / {peaks['bfc']:.0f}",
        ])
    bc.emit_table(
        "TensorFlow's CPU allocator: malloc (its default) / BFC (lr-suite's default)",
        ["domain", "config", "s/step (median)", "speed-up", "user CPU s/step",
         "system CPU s/step", "peak RSS MiB"],
        rows,
        notes=(f"Medians of {rounds} fresh process(es) per setting, alternating; each "
               f"times {steps} steps on the real pipeline after 3 untimed ones. Speed-up "
               "above 1: BFC is faster."),
        markdown_path=args.markdown)


if __name__ == "__main__":
    main()
