"""Is the input pipeline the bottleneck? Training steps/s on each domain's real pipeline
against the same compiled model fed from batches already in memory.

For each domain: load the real data (`bundle.train` from the domain's `load_data`), build
and compile the model (the schedule planned as in training), then alternate rounds of
training steps (the model's own compiled train function, as `fit` calls it) fed by
  - pipeline: `bundle.train` itself (decoding, augmentation, shuffling, batching);
  - in memory: the same pipeline's first batches, taken once and replayed with
    `.take(n).cache().repeat()`: the same shapes and dtypes, no input work at all.
Both iterate from the pipeline's start (it is seeded), so they train on the same batches:
translation pads each batch to its own length, and a different sample of batches would
make a different amount of work. Steps per round are set from a first timing so that a
round lasts `--seconds`, whatever the domain's speed. The ratio pipeline / in memory is
1.0 when the pipeline never holds training back. The pipeline's own rate (batches/s with
no model) is printed beside it: on 2 cores the pipeline and the model share the CPU, so
the ratio is what training sees.

    python bench/input_pipeline.py [DOMAIN ...] [--seconds 15] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import time

import bench_common as bc
import tensorflow as tf


def pipeline_batches_per_second(dataset, batches: int) -> float:
    """The pipeline alone: batches/s with nothing consuming them but the iterator."""
    iterator = iter(dataset)
    next(iterator)  # the first batch starts the background threads; not timed
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches / (time.perf_counter() - started)


def batch_bytes(batch) -> int:
    return sum(int(t.numpy().nbytes) for t in tf.nest.flatten(batch))


def measure_domain(name: str, data: str | None, *, small: bool, seconds: float, rounds: int,
                   cache_megabytes: int) -> list[object]:
    domain = bc.get_domain(name)
    cfg = bc.bench_config(domain, data or bc.real_data(name), small=small)
    bundle = domain.load_data(cfg)
    model = bc.compiled_model(domain, cfg, bundle)

    # Warm-up on a throwaway iterator, not timed: trace the step (translation: a few
    # batch lengths, until Keras relaxes the shapes), then a first rate sets the round size.
    model.fit(bundle.train, epochs=1, steps_per_epoch=10, verbose=0)
    steps = bc.steps_for_seconds(
        lambda n: model.fit(bundle.train, epochs=1, steps_per_epoch=n, verbose=0), seconds)

    # Enough batches in memory for every timed step, within the memory allowance.
    one_batch = next(iter(bundle.train))
    cached = max(1, min(steps * rounds + 2,
                        cache_megabytes * 2**20 // max(1, batch_bytes(one_batch))))
    in_memory = bundle.train.take(cached).cache().repeat()
    for _ in in_memory.take(cached + 1):  # one full pass fills the cache; not timed
        pass

    # One iterator per variant for the whole run, as `fit` keeps one across epochs: a
    # round must not pay for restarting the pipeline (refilling its shuffle buffer).
    iterators = {"pipeline": iter(bundle.train), "in_memory": iter(in_memory)}
    for iterator in iterators.values():
        bc.train_steps(model, iterator, 2)  # starts tf.data's threads

    def rate_of(variant):
        return lambda: bc.steps_per_second(
            lambda n: bc.train_steps(model, iterators[variant], n), steps)

    rates = bc.alternate_rounds({v: rate_of(v) for v in iterators}, rounds)
    alone = pipeline_batches_per_second(bundle.train, steps)
    pipeline, replayed = bc.median(rates["pipeline"]), bc.median(rates["in_memory"])
    ratio = pipeline / replayed
    verdict = "pipeline-bound" if ratio < 0.85 else "not the bottleneck"
    print(f"{name}: {steps} steps per round, {cached} batches in memory; pipeline "
          f"{pipeline:.1f} steps/s (rounds {bc.spread(rates['pipeline'])}), in memory "
          f"{replayed:.1f} ({bc.spread(rates['in_memory'])}), ratio {ratio:.3f}; pipeline "
          f"alone {alone:.1f} batches/s", flush=True)
    return [name, bc.config_label(cfg, small), steps,
            f"{pipeline:.1f} ({bc.spread(rates['pipeline'])})",
            f"{replayed:.1f} ({bc.spread(rates['in_memory'])})",
            f"**{ratio:.2f}**", f"{alone:.0f}", verdict]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domains", nargs="*", metavar="DOMAIN",
                        help="domains to measure (default: all four)")
    parser.add_argument("--data", default=None, help="data of the one DOMAIN given "
                        "(default: its real data under ../shared/data)")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="length of a round; sets the steps per round per domain")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--cache-megabytes", type=int, default=512,
                        help="memory allowance for the replayed batches")
    parser.add_argument("--quick", action="store_true",
                        help="few steps and rounds; small models where a step is slow")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 4.0, 2
    rows = []
    for name in bc.parse_domains(args.domains, args.data):
        small = args.quick and name in bc.SLOW_STEP_DOMAINS
        rows.append(measure_domain(name, args.data, small=small, seconds=args.seconds,
                                   rounds=args.rounds, cache_megabytes=args.cache_megabytes))
    bc.emit_table(
        "steps/s: real input pipeline against batches held in memory",
        ["domain", "config", "steps/round", "pipeline steps/s (rounds)",
         "in-memory steps/s (rounds)", "ratio", "pipeline alone, batches/s", "reading"],
        rows,
        notes=f"Medians of {args.rounds} alternating rounds of about {args.seconds:g} s; in "
        "memory = the pipeline's first batches replayed with .take(n).cache().repeat(), the "
        "same batches the pipeline variant trains on. Ratio 1.0: the pipeline never holds "
        "training back; below 0.85 is read as pipeline-bound.",
        markdown_path=args.markdown)


if __name__ == "__main__":
    main()
