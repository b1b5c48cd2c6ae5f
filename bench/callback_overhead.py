"""Overhead of the suite's per-step callbacks against a bare `model.fit`.

Same compiled model, same data, same batch size; the two variants alternate in one
process (rounds x steps each), so machine noise hits both alike. Prints steps/s of each
and the ratio of their medians (1.0 = free).

    python bench/callback_overhead.py [--data DIR] [--rounds 3] [--steps 150]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from common import callbacks as cb  # noqa: E402
from common.domain import get_domain  # noqa: E402
from common.training import _probe_batch, compile_model  # noqa: E402


def suite_callbacks(log_dir: Path, model, bundle, domain, cfg, monitor_every: int):
    recorder = cb.StepRecorder(log_dir / "train", log_dir / "steps.csv", log_every=10)
    callbacks = [recorder, cb.DivergenceWatch(recorder),
                 keras.callbacks.TensorBoard(log_dir=str(log_dir))]
    if monitor_every:
        callbacks.append(cb.TrainingDynamics(log_dir / "train", monitor_every,
                                             _probe_batch(bundle), domain.loss(cfg)))
    return callbacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="sentiment folder (default: shared rt_polarity)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--monitor-every", type=int, default=50)
    args = parser.parse_args()
    data = args.data or os.path.join(os.environ.get("LRSUITE_SHARED_DATA", "../shared/data"),
                                     "sentiment", "rt_polarity")
    domain = get_domain("sentiment")
    cfg = domain.config_cls(data=data)
    bundle = domain.load_data(cfg)
    model = domain.build_model(cfg, bundle)
    compile_model(domain, cfg, model, cfg.learning_rate, bundle)
    model.fit(bundle.train, epochs=1, steps_per_epoch=20, verbose=0)  # trace once
    timings = {"bare": [], "suite": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            for name in ("bare", "suite"):
                callbacks = [] if name == "bare" else suite_callbacks(
                    Path(tmp) / f"r{round_index}", model, bundle, domain, cfg, args.monitor_every)
                started = time.perf_counter()
                model.fit(bundle.train, epochs=1, steps_per_epoch=args.steps, verbose=0,
                          callbacks=callbacks)
                timings[name].append(args.steps / (time.perf_counter() - started))
    import statistics

    bare, suite = statistics.median(timings["bare"]), statistics.median(timings["suite"])
    print(f"data: {bundle.description}")
    print(f"bare model.fit      : {bare:8.1f} steps/s median  (rounds: {', '.join(f'{v:.1f}' for v in timings['bare'])})")
    print(f"with suite callbacks: {suite:8.1f} steps/s median  (rounds: {', '.join(f'{v:.1f}' for v in timings['suite'])})")
    print(f"ratio suite/bare    : {suite / bare:.3f}  (medians over {args.rounds} alternating rounds; "
          f"monitor every {args.monitor_every} steps)")

if __name__ == "__main__":
    main()
