"""What the bench scripts share: where the real data is, the configs they measure, the
alternating-rounds timer and the Markdown tables `run_all.py` gathers into results.md.

Not a script; the scripts import it (they run as `python bench/<script>.py`, which puts
bench/ on the import path).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from common.cpu_allocator import prefer_pooled_allocator  # noqa: E402

prefer_pooled_allocator()  # what the CLI runs with; bench/cpu_allocator.py compares
from common.domain import domain_names, get_domain  # noqa: E402
from common.training import compile_model, plan_schedule, steps_per_epoch_for  # noqa: E402

# The real data set each domain is measured on, under the shared data folder.
REAL_DATA = {
    "image_classification": "image_classification/cifar10_subset.npz",
    "medical_segmentation": "medical_segmentation/drive",
    "sentiment": "sentiment/rt_polarity",
    "translation": "translation/multi30k_de_en",
}

# Quick mode keeps each domain's real data but may train the domain's small (smoke)
# model instead of its default one, where a default step costs a second or more on 2
# CPU cores (or, for XLA, a compilation does): these sizes make that small model a
# realistic batch rather than the tests' tiny one.
SMALL_MODEL_SIZES = {
    "image_classification": {"batch_size": 64, "base_filters": 16},
    "medical_segmentation": {"batch_size": 8, "crop_size": 64, "base_filters": 8, "depth": 3},
    "sentiment": {"batch_size": 50},
    "translation": {"batch_size": 32},
}
# Domains whose default model is fast on 2 CPU cores; every other registered domain (about
# a second per step, tens of seconds to trace or compile) trains its small model in quick
# mode, a new domain included.
FAST_STEP_DOMAINS = frozenset({"sentiment"})
SLOW_STEP_DOMAINS = frozenset(domain_names()) - FAST_STEP_DOMAINS


def shared_data_dir() -> Path:
    return Path(os.environ.get("LRSUITE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def real_data(domain_name: str) -> str:
    """The shared real data of a domain; exits with one line when it is missing."""
    if domain_name not in REAL_DATA:
        sys.exit(f"bench: no real data is named for {domain_name} (bench_common.REAL_DATA); "
                 "pass --data.")
    path = shared_data_dir() / REAL_DATA[domain_name]
    if not path.exists():
        sys.exit(f"bench: no real data for {domain_name} at {path}; set LRSUITE_SHARED_DATA "
                 "to the folder that holds it (see ../shared/data/MANIFEST.md), or pass --data.")
    return str(path)


def parse_domains(names: Sequence[str], data: str | None) -> list[str]:
    """Domain names from the command line: none or `all` means every registered one."""
    chosen = domain_names() if not names or list(names) == ["all"] else list(names)
    for name in chosen:
        get_domain(name)  # an unknown name fails here, with the list of known ones
    if data is not None and len(chosen) != 1:
        sys.exit("bench: --data names one domain's data; give exactly one DOMAIN with it.")
    return chosen


def bench_config(domain, data: str, *, small: bool, **overrides):
    """The domain's default config (or its small preset) on `data`, quiet."""
    values = {"data": data, "verbose": 0, **overrides}
    if small:
        return domain.config_cls.smoke(**{**SMALL_MODEL_SIZES.get(domain.name, {}), **values})
    return domain.config_cls(**values)


def compiled_model(domain, cfg, bundle):
    """The domain's model for `cfg`, compiled as `lrsuite train` compiles it (optimizer,
    rate schedule, loss and metrics)."""
    model = domain.build_model(cfg, bundle)
    plan = plan_schedule(cfg, cfg.learning_rate, steps_per_epoch_for(cfg, bundle))
    compile_model(domain, cfg, model, plan.learning_rate, bundle)
    return model


def config_label(cfg, small: bool) -> str:
    return f"{'small' if small else 'default'} model, batch {cfg.batch_size}"


def alternate_rounds(variants: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call each variant once per round, the order flipping every round (A B, B A, ...),
    so that a slow stretch of the machine falls on both alike. Returns each one's values."""
    results: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else reversed(names):
            results[name].append(variants[name]())
    return results


def steps_per_second(fit: Callable[[int], None], steps: int) -> float:
    started = time.perf_counter()
    fit(steps)
    return steps / (time.perf_counter() - started)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def emit_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]],
               notes: str = "", markdown_path: str | None = None) -> None:
    """Print the table; with `markdown_path`, also write it there as a Markdown section
    (run_all.py reads these back into results.md)."""
    table = markdown_table(headers, rows)
    print(f"\n{title}\n{table}" + (f"\n{notes}\n" if notes else ""), flush=True)
    if markdown_path:
        text = f"{table}\n{notes}\n" if notes else table
        Path(markdown_path).write_text(text, encoding="utf-8")


def train_steps(model, iterator, steps: int) -> None:
    """`steps` training steps of a compiled, already built model on a tf.data iterator:
    the train function `fit` calls once per step, without fit's per-call set-up."""
    logs = None
    for _ in range(steps):
        logs = model.train_function(iterator)
    if logs is not None:
        float(logs["loss"])  # wait for the last step to finish


def steps_for_seconds(fit: Callable[[int], None], seconds: float, minimum: int = 5) -> int:
    """Steps that make a round last about `seconds`, from a first timing of 10 steps
    (domains differ 50-fold in speed; fixed step counts would give rounds too short to
    time or too long to afford)."""
    return max(minimum, round(steps_per_second(fit, 10) * seconds))
