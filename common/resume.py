"""Exact resume: what a run directory must hold so that `--resume` continues the very
run that stopped, and the rules for what a resumed command may change.

Keras's `BackupAndRestore` keeps the weights and the optimizer's state, but not the
state of the model's random seed generators (dropout masks, augmentation layers): a
resumed run drew other masks from its first step on and parted from the uninterrupted
run. `ResumableBackup` also keeps those states, one file per completed epoch, so that
a kill between two of its writes never pairs weights of one epoch with random state of
another.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

from common.errors import UserError

BACKUP_DIR = "backup"
MODEL_FILE = "model.keras"
RANDOM_STATE_PREFIX = "random_state-"

# Fields a resumed command may give differently: they do not change what is computed.
# `epochs` may grow (the run is extended, and the summary says so); anything else
# would silently mix two runs.
RESUME_MAY_CHANGE = frozenset({"resume", "verbose", "output", "run_name", "test_time_flip"})
RESUME_MAY_GROW = frozenset({"epochs"})
# Fields added after runs were already on disk, with the value that does what those runs
# did: a config.json without the field is taken to hold it, so such a run still resumes.
ADDED_LATER = {"cutout": 0, "weight_averaging": 0.0}


def seed_generators(model) -> list:
    """Every seed generator of the model and its sublayers, in a stable order."""
    found, seen = [], set()
    for layer in [model, *model._flatten_layers(include_self=False)]:
        for generator in getattr(layer, "_seed_generators", []):
            if id(generator) not in seen:
                seen.add(id(generator))
                found.append(generator)
    return found


def completed_epochs(backup_dir: Path) -> int:
    """Epochs whose weights the backup in `backup_dir` holds (0 when there is none)."""
    path = backup_dir / "training_metadata.json"
    if not path.exists():
        return 0
    return int(json.loads(path.read_text(encoding="utf-8"))["epoch"])


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that also saves and restores the model's random state."""

    def __init__(self, backup_dir: str | Path):
        super().__init__(str(backup_dir), delete_checkpoint=False)
        self._dir = Path(backup_dir)

    def _state_path(self, epoch: int) -> Path:
        return self._dir / f"{RANDOM_STATE_PREFIX}{epoch}.npz"

    def _save_model(self):
        self._dir.mkdir(parents=True, exist_ok=True)
        states = [keras.ops.convert_to_numpy(g.state.value) for g in seed_generators(self.model)]
        path = self._state_path(self._current_epoch)
        temp = path.with_suffix(".tmp.npz")
        np.savez(temp, *states)
        temp.replace(path)
        super()._save_model()  # weights, then the metadata naming this epoch
        for older in self._dir.glob(f"{RANDOM_STATE_PREFIX}*.npz"):
            if older != path and not older.name.endswith(".tmp.npz"):
                older.unlink(missing_ok=True)

    def _load_model(self):
        weights = self._dir / "latest.weights.h5"
        model_file = self._dir.parent / MODEL_FILE
        if not weights.exists() and model_file.exists() and completed_epochs(self._dir):
            # A completed run keeps its model, not a second copy of its weights: an
            # extended run starts from the model (weights and optimizer state).
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(str(model_file))
            self.model._initial_epoch = completed_epochs(self._dir)  # as Keras's own does
        else:
            super()._load_model()
        epoch = completed_epochs(self._dir)
        if not epoch:
            return
        path = self._state_path(epoch)
        if not path.exists():
            return  # a backup written before random states were kept
        with np.load(path) as stored:
            states = [stored[f"arr_{i}"] for i in range(len(stored.files))]
        generators = seed_generators(self.model)
        if len(states) != len(generators):
            raise UserError(
                f"{path}: holds {len(states)} random states but the model has "
                f"{len(generators)} seed generators; the model changed since the run "
                "started. Drop --resume to start a new run."
            )
        for generator, state in zip(generators, states, strict=True):
            generator.state.assign(state)


def release_weights(run_dir: Path) -> int:
    """Once a run completed and saved its model, drop the backup's copy of the weights
    (20-30 MB a run) and keep its small metadata and random state, so the run can
    still be extended. Returns the bytes freed."""
    if not (run_dir / MODEL_FILE).is_file():
        return 0
    freed = 0
    for path in (run_dir / BACKUP_DIR).glob("latest.weights.h5*"):
        freed += path.stat().st_size
        path.unlink()
    return freed


def resume_changes(stored: dict[str, Any], wanted: dict[str, Any], done_epochs: int) -> dict:
    """The budget changes a resumed command makes, after refusing any other change.

    `stored` is the run's config.json, `wanted` the new command's config (both as
    dicts; the stored rate is the requested one, e.g. 'auto'). Returns the grown
    fields as {field: [old, new]}; raises UserError naming every field that differs.
    """
    stored = {**{f: v for f, v in ADDED_LATER.items() if f in wanted}, **stored,
              "learning_rate": stored.get("requested_learning_rate", stored.get("learning_rate"))}
    wanted = json.loads(json.dumps(wanted))  # tuples as lists, as read back from JSON
    fields = (set(stored) | set(wanted)) - {"requested_learning_rate"} - RESUME_MAY_CHANGE
    differ = sorted(f for f in fields if stored.get(f) != wanted.get(f))
    grown = {f: [stored[f], wanted[f]] for f in differ
             if f in RESUME_MAY_GROW and wanted[f] > stored[f]}
    refused = [f for f in differ if f not in grown]
    if refused:
        shown = ", ".join(f"{f} (run: {stored.get(f)!r}, now: {wanted.get(f)!r})"
                          for f in refused)
        raise UserError(
            f"--resume: this run was started with other settings: {shown}. Resume with "
            "the run's own flags (see its config.json; only a larger --epochs may be "
            "given), or drop --resume to start a new run."
        )
    if "epochs" in grown and wanted["epochs"] <= done_epochs:
        raise UserError(f"--resume: the run already ran {done_epochs} epochs; --epochs "
                        f"{wanted['epochs']} adds none.")
    return grown
