"""`SharpnessProbe`: the sharpness and its stability threshold every N training steps,
to TensorBoard (the run's train/ events, tags dynamics/sharpness,
dynamics/stability_threshold, dynamics/sharpness_over_threshold), sharpness.csv and
summary.json."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import keras

from common.sharpness import DEFAULT_ITERATIONS, DEFAULT_TOLERANCE, HessianProbe, measure

SHARPNESS_FIELDS = ("step", "epoch", "learning_rate", "sharpness", "threshold", "ratio")
SHARPNESS_CSV = "sharpness.csv"


class SharpnessProbe(keras.callbacks.Callback):
    """Before every `every`-th training step, measures the (preconditioned) sharpness of
    the loss on `probe_batch` and the threshold of the rate that step applies.

    Args:
        run_dir: the run directory: events go to run_dir/train, rows to sharpness.csv.
        every: interval in steps (>= 1).
        probe_batch: (x, y), fixed for the whole run so readings compare.
        loss_fn: the compiled loss.
        iterations, tolerance: power-iteration budget per reading.

    Attributes:
        records: one dict per reading (step, epoch, learning_rate, sharpness, threshold,
            ratio), including those of the run a --resume continues.
    """

    def __init__(self, run_dir: Path, every: int, probe_batch, loss_fn, *,
                 iterations: int = DEFAULT_ITERATIONS, tolerance: float = DEFAULT_TOLERANCE):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1. Received: every={every}")
        self.run_dir = Path(run_dir)
        self.every = every
        self.probe_batch = probe_batch
        self.loss_fn = loss_fn
        self.iterations = iterations
        self.tolerance = tolerance
        self.records: list[dict[str, Any]] = []
        self.rule = ""
        self.preconditioned = False
        self._probe: HessianProbe | None = None
        self._writer = None
        self._step: int | None = None
        self._epoch = 0

    @property
    def csv_path(self) -> Path:
        return self.run_dir / SHARPNESS_CSV

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        self._writer = tf.summary.create_file_writer(str(self.run_dir / "train"))
        self._described: set[str] = set()
        self._step = None  # read from the optimizer at the first step, after any restore
        if self._probe is None or self._probe.model is not self.model:
            # Kept across fits of the same model: the next fit's first probe starts warm.
            self._probe = HessianProbe(self.model, self.loss_fn, iterations=self.iterations,
                                       tolerance=self.tolerance)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self._step is None:
            self._step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            self._keep_previous(self._step)
        else:
            self._step += 1  # counted: reading the optimizer's counter syncs every step
        if self._step % self.every or self.probe_batch is None:
            return
        if keras.backend.backend() == "jax":
            # JAX's fit holds the state apart from the model's variables during an epoch.
            self.model.jax_state_sync()
        reading = measure(self._probe, self.model.optimizer, self.probe_batch)
        if reading is None:
            return
        self.rule = reading["rule"]
        self.preconditioned = reading["preconditioned"]
        record = {"step": self._step, "epoch": self._epoch + 1,  # from 1, as steps.csv and history
                  **{k: reading[k] for k in SHARPNESS_FIELDS[2:]},
                  "iterations": reading["iterations"]}
        self.records.append(record)
        self._append_row(record)
        self._log(record)

    def _log(self, record: dict[str, Any]) -> None:
        import tensorflow as tf

        kind = "preconditioned sharpness (top eigenvalue of P^-1 H)" if self.preconditioned \
            else "sharpness (top eigenvalue of the loss Hessian)"
        descriptions = {
            "dynamics/sharpness": f"The {kind} on a fixed probe batch, every "
                                  "--sharpness-every steps.",
            "dynamics/stability_threshold": f"The rate's stability threshold {self.rule}: a "
                                            "sharpness above it makes the steps overshoot.",
            "dynamics/sharpness_over_threshold": "Sharpness / threshold: near 1 at the edge of "
                                                 "stability, well above 1 when the rate is too "
                                                 "high."}
        values = {"dynamics/sharpness": record["sharpness"]}
        if math.isfinite(record["threshold"]):
            values.update({"dynamics/stability_threshold": record["threshold"],
                           "dynamics/sharpness_over_threshold": record["ratio"]})
        with self._writer.as_default(step=record["step"]):
            for tag, value in values.items():
                # Described once per writer: TensorBoard keeps a tag's first metadata.
                first = tag not in self._described
                self._described.add(tag)
                tf.summary.scalar(tag, value, description=descriptions[tag] if first else None)

    def _append_row(self, record: dict[str, Any]) -> None:
        new_file = not self.csv_path.exists()
        with self.csv_path.open("a", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            if new_file:
                writer.writerow(SHARPNESS_FIELDS)
            writer.writerow([record["step"], record["epoch"]]
                            + [f"{record[k]:.9g}" for k in SHARPNESS_FIELDS[2:]])

    def _keep_previous(self, start_step: int) -> None:
        """On a resumed run: keep the rows before the restored step, drop later ones (they
        belong to steps that will run again)."""
        self.records = []
        if not self.csv_path.exists():
            return
        with self.csv_path.open(newline="", encoding="utf-8") as stream:
            rows = [row for row in csv.DictReader(stream) if int(row["step"]) < start_step]
        with self.csv_path.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=SHARPNESS_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        self.records = [{"step": int(r["step"]), "epoch": int(r["epoch"]),
                         **{k: float(r[k]) for k in SHARPNESS_FIELDS[2:]}} for r in rows]

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def summary(self) -> dict[str, Any]:
        """The part of summary.json: rule, kind, interval and every reading."""
        return {"every": self.every, "rule": self.rule, "preconditioned": self.preconditioned,
                "records": self.records}
