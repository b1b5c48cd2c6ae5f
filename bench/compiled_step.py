"""XLA on and off: compile time and steps per second of one domain's default model.

For each setting, a fresh model is compiled, the first step (tracing and compilation) is
timed on its own, then `--steps` further steps; the settings alternate over `--rounds`.

    python bench/compiled_step.py sentiment --data DIR [--steps 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.domain import get_domain  # noqa: E402
from common.seed import set_seed  # noqa: E402
from common.training import compile_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domain")
    parser.add_argument("--data", required=True)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    domain = get_domain(args.domain)
    base = domain.config_cls(data=args.data)
    bundle = domain.load_data(base)
    results: dict[str, dict[str, list[float]]] = {}
    for _ in range(args.rounds):
        for setting in ("off", "on"):
            cfg = base.replace(jit_compile=setting)
            set_seed(cfg.seed)
            model = domain.build_model(cfg, bundle)
            compile_model(domain, cfg, model, cfg.learning_rate, bundle)
            started = time.perf_counter()
            model.fit(bundle.train, epochs=1, steps_per_epoch=1, verbose=0)
            first = time.perf_counter() - started
            started = time.perf_counter()
            model.fit(bundle.train, epochs=1, steps_per_epoch=args.steps, verbose=0)
            rate = args.steps / (time.perf_counter() - started)
            entry = results.setdefault(setting, {"first": [], "rate": []})
            entry["first"].append(first)
            entry["rate"].append(rate)
    print(f"data: {bundle.description}")
    for setting, entry in results.items():
        print(f"jit_compile {setting:>3}: first step {min(entry['first']):6.2f} s, "
              f"{max(entry['rate']):7.1f} steps/s (best of {args.rounds})")
    print(f"steps/s ratio on/off: {max(results['on']['rate']) / max(results['off']['rate']):.3f}")


if __name__ == "__main__":
    main()
