"""Reuse a finished run, resume an interrupted one, or start it: what sweeps and searches
do with each of their points, so that re-running their command repeats nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.runs import FINISHED_STATUSES, read_json
from common.training import run_training


def finished_summary(run_dir: Path,
                     same_config: Callable[[dict[str, Any]], bool] | None = None
                     ) -> dict[str, Any] | None:
    """The summary of a run that finished (and, with `same_config`, whose stored
    config.json passes it), or None."""
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        return None
    summary = read_json(summary_path)
    if summary.get("status") not in FINISHED_STATUSES:
        return None
    if same_config is not None:
        config_path = run_dir / "config.json"
        if not config_path.exists() or not same_config(read_json(config_path)):
            return None
    return summary


def run_or_resume(domain, cfg, run_root: Path, run_name: str, *, bundle,
                  same_config: Callable[[dict[str, Any]], bool] | None = None,
                  save_model: bool = False, **training: Any) -> tuple[dict[str, Any], bool]:
    """(summary, reused) of the run `run_root/run_name` trained with `cfg`.

    A finished run is read back (reused=True); one with a config.json resumes from its
    last completed epoch; a folder without one (killed before it wrote its config) holds
    nothing to keep and is replaced, so the run keeps its name. Other keyword arguments
    go to `run_training` (e.g. the range test that chose the rates).
    """
    run_dir = run_root / run_name
    previous = finished_summary(run_dir, same_config)
    if previous is not None:
        return previous, True
    resume = (run_dir / "config.json").exists()
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)
    cfg = cfg.replace(run_name=run_name, resume=resume)
    result = run_training(domain, cfg, bundle=bundle, announce=False, save_model=save_model,
                          run_root=run_root, **training)
    return result.summary, False
