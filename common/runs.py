"""Run directories: one per run, never reused by accident, written atomically.

Layout of `<output>/<domain>/<run-name>/`:
    config.json      the resolved config (plain data)
    summary.json     status, metrics, history, diagnosis, timings
    train/ validation/   TensorBoard event files (Keras's TensorBoard callback)
    steps.csv        per-step learning rate and recovered per-batch loss
    plots/           PNG figures
    backup/          Keras BackupAndRestore state, for --resume
    model.keras      the trained model (Keras native format)
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from common.errors import UserError

STATUSES = ("running", "completed", "diverged", "interrupted", "failed")
# A run in one of these ended by itself: sweeps and searches read it back, never rerun it.
FINISHED_STATUSES = ("completed", "diverged")


def default_run_name(optimizer: str, schedule: str, learning_rate: Any) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rate = f"{learning_rate:.0e}" if isinstance(learning_rate, float) else str(learning_rate)
    return f"{stamp}-{optimizer}-{schedule}-lr{rate}"


def create_run_dir(root: Path, name: str) -> Path:
    """Create a fresh run directory `root/name`, adding -2, -3 ... if it exists.

    `mkdir` without exist_ok is atomic, so two runs started at once with the same name
    get different directories instead of writing into each other.
    """
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        candidate = root / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise UserError(f"{root}: too many runs named {name!r}; choose another --run-name.")


def existing_run_dir(root: Path, name: str) -> Path:
    """The run directory to resume; it must exist and hold a config."""
    path = root / name
    if not (path / "config.json").is_file():
        raise UserError(
            f"{path}: no run to resume there (config.json missing). Check --run-name "
            "and --output, or drop --resume to start a new run."
        )
    return path


def _json_safe(value: Any) -> Any:
    """NaN and Inf are not JSON: write them as strings that say what they were."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return _json_safe(value.item())
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename): a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes it 0600; other files follow the umask
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(_json_safe(data), stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found.") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: not valid JSON ({error.msg}).") from None
