"""`make bench`: the quick version of every bench script, gathered into bench/results.md.

Runs each script with `--quick` in its own process (a fresh TensorFlow each time, so one
script's threads and memory do not weigh on the next), one after another, and writes one
Markdown file: the machine and library versions, then each script's table, command and
wall time. A script that fails is reported in the file with the end of its output; the
others still run, and the exit status is 1.

    python bench/run_all.py [SCRIPT ...] [--output bench/results.md]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# (script, what its table shows), in the order they run.
SCRIPTS = {
    "input_pipeline": "training steps/s on the real input pipeline against batches held in memory",
    "callback_overhead": "the suite's per-step callbacks against a bare model.fit",
    "compiled_step": "XLA (jit_compile) off and on",
    "cpu_allocator": "TensorFlow's CPU allocator: malloc (its default) against the pooled BFC",
    "search_efficiency": "Hyperband against random search at equal budget (sentiment)",
    "range_test_vs_grid": "the LR range test against a grid of rates",
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def header(load_before: str) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return "\n".join([
        "# Bench results (quick mode)",
        "",
        "Written by `make bench` (`python bench/run_all.py`): every bench script with `--quick`, "
        "one after another. Quick means few steps and rounds and, where a default step is "
        "slow, a small model: read the ratios, not the absolute rates, and expect them to "
        "move by 10-20% between runs on a shared machine.",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {cores} CPU cores ({cpu_model()}), {memory_gib()} memory, "
        f"{platform.system()} {platform.release()}; load average at start {load_before}",
        f"- Python {platform.python_version()}, TensorFlow {version('tensorflow')}, "
        f"Keras {version('keras')}, keras-tuner {version('keras-tuner')}",
        "",
    ])


def load_average() -> str:
    try:
        return " / ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def run_script(name: str, tmp: Path) -> tuple[str, float, bool]:
    """Run one script in quick mode; return its Markdown section, wall time and success."""
    table_path = tmp / f"{name}.md"
    command = [sys.executable, str(BENCH_DIR / f"{name}.py"), "--quick",
               "--markdown", str(table_path)]
    print(f"== bench/{name}.py --quick", flush=True)
    started = time.perf_counter()
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, check=False)
    wall = time.perf_counter() - started
    print(completed.stdout, end="", flush=True)
    ok = completed.returncode == 0 and table_path.exists()
    section = [f"## {name}.py: {SCRIPTS[name]}", "",
               f"`python bench/{name}.py --quick` ({wall:.0f} s)", ""]
    if ok:
        section.append(table_path.read_text(encoding="utf-8"))
    else:
        tail = "\n".join(completed.stdout.strip().splitlines()[-15:])
        section += [f"**failed** (exit status {completed.returncode}); last lines:", "",
                    "```", tail, "```", ""]
    return "\n".join(section), wall, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scripts", nargs="*", metavar="SCRIPT",
                        help=f"run only these ({', '.join(SCRIPTS)}); default all")
    parser.add_argument("--output", default=str(BENCH_DIR / "results.md"))
    args = parser.parse_args()
    unknown = sorted(set(args.scripts) - set(SCRIPTS))
    if unknown:
        parser.error(f"unknown script(s) {', '.join(unknown)}; expected some of: "
                     f"{', '.join(SCRIPTS)}")
    chosen = args.scripts or list(SCRIPTS)
    started = time.perf_counter()
    text = [header(load_average())]
    failures = []
    timings = []
    with tempfile.TemporaryDirectory(prefix="lrsuite-bench-") as tmp:
        for name in chosen:
            section, wall, ok = run_script(name, Path(tmp))
            text.append(section)
            timings.append(f"{name} {wall:.0f} s")
            if not ok:
                failures.append(name)
    total = time.perf_counter() - started
    text.append(f"Total: {total / 60:.1f} min ({', '.join(timings)}); load average at the "
                f"end {load_average()}.\n")
    Path(args.output).write_text("\n".join(text), encoding="utf-8")
    print(f"\nwrote {args.output} in {total / 60:.1f} min"
          + (f"; failed: {', '.join(failures)}" if failures else ""), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
