"""steps.csv, the per-step record of a run: one row per training step."""

from __future__ import annotations

import csv
from pathlib import Path

from common.callbacks import STEP_FIELDS


def restart_steps_csv(path: Path, keep_below: int) -> list[dict[str, str]]:
    """Keep the rows of steps before `keep_below` (the completed epochs of an
    interrupted run), rewrite the file with them, and return them.

    Steps after the last completed epoch are run again on resume: keeping their rows
    would record them twice.
    """
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as stream:
        rows = [row for row in csv.DictReader(stream) if int(row["step"]) < keep_below]
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=STEP_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return rows
