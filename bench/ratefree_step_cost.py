"""Seconds per training step of each rate-free / schedule-free optimizer against Adam, on a
small dense model (the extra work is per parameter: copies, norms, dot products).

    python bench/ratefree_step_cost.py [--rounds 5] [--steps 200] [--width 256]

Prints the CPU, then per optimizer the median of `rounds` timings (rounds alternate in
order, see bench_common.alternate_rounds) and the ratio to Adam's median.
"""

from __future__ import annotations

import argparse
import platform
import subprocess

from bench_common import alternate_rounds, emit_table, median, train_steps


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200, help="steps per timed round")
    parser.add_argument("--width", type=int, default=256, help="hidden width")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--markdown", default=None, help="also write the table here")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from common.optim import build_optimizer
    from common.optimizers import OPTIMIZERS

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch_size * 8, 64)).astype("float32")
    y = rng.integers(0, 10, size=len(x))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size).repeat()

    def timed(name: str):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((64,)),
            keras.layers.Dense(args.width, activation="relu"),
            keras.layers.Dense(args.width, activation="relu"),
            keras.layers.Dense(10),
        ])
        rate = {"adam": 1e-3, "schedule_free_adamw": 2.5e-3, "schedule_free_sgd": 0.1}
        model.compile(optimizer=build_optimizer(name, rate.get(name, 1.0)),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        iterator = iter(data)
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # build and trace
        model.make_train_function()
        train_steps(model, iterator, 5)

        def round_seconds() -> float:
            import time

            started = time.perf_counter()
            train_steps(model, iterator, args.steps)
            return (time.perf_counter() - started) / args.steps

        return round_seconds

    names = ["adam", *OPTIMIZERS]
    results = alternate_rounds({name: timed(name) for name in names}, args.rounds)
    params = sum(int(np.prod(w.shape)) for w in keras.Sequential([
        keras.Input((64,)), keras.layers.Dense(args.width), keras.layers.Dense(args.width),
        keras.layers.Dense(10)]).weights)
    base = median(results["adam"])
    rows = [(name, f"{median(results[name]) * 1e3:.3f}", f"{median(results[name]) / base:.2f}")
            for name in names]
    emit_table(
        f"seconds per step relative to Adam ({cpu_model()}, {params} parameters, "
        f"batch {args.batch_size}, median of {args.rounds} rounds x {args.steps} steps)",
        ("optimizer", "ms per step", "x Adam"), rows, markdown_path=args.markdown)


if __name__ == "__main__":
    main()
