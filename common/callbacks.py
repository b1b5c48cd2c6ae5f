"""Callbacks that make the learning rate visible: per-step rate and loss, divergence,
update sizes and gradient norms, and a summary that survives a crash.

Keras hands `on_train_batch_end` the epoch's running mean of the loss, not the batch's
own loss (keras-team/keras#17167). `StepRecorder` recovers each batch's loss from two
consecutive running means: with equal batch weights, `loss_i = (i + 1) * m_i - i * m_{i-1}`.
The suite's training pipelines drop the last partial batch, so the weights are equal and
the recovery is exact up to float rounding.

All callbacks create writers and files in `on_train_begin`, never in `__init__`, so
they survive `copy.deepcopy` (Keras Tuner copies callbacks per trial).
"""

from __future__ import annotations

import csv
import math
import weakref
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

STEP_FIELDS = ("step", "epoch", "learning_rate", "loss")

# TensorBoard tags, grouped by what they show (rate/, loss/, dynamics/); Keras's own
# epoch_loss and epoch_learning_rate stay as Keras writes them.
RATE_TAG = "rate/batch_learning_rate"
LOG10_RATE_TAG = "rate/log10_learning_rate"
LOSS_TAG = "loss/batch_loss"
DYNAMICS_PREFIX = "dynamics/"
TAG_DESCRIPTIONS = {
    RATE_TAG: "The learning rate the optimizer applied at this step, schedule included "
              "(every --log-lr-every steps). Tick 'Log' on the y axis to compare rates.",
    LOG10_RATE_TAG: "log10 of rate/batch_learning_rate: -3 is 1e-3, so a sweep's rates "
                    "from 1e-5 to 1 read as -5 to 0 on a linear axis.",
    LOSS_TAG: "This batch's own training loss (Keras logs a running mean; it is recovered "
              "from two consecutive means), every --log-lr-every steps.",
    "dynamics/update_ratio/global": "Size of one step's update over the size of all weights "
                                    "(||dw|| / ||w||): ~1e-3 is healthy, 1e-1 and up means "
                                    "the rate is too high, 1e-5 and below too low.",
    "dynamics/gradient_norm": "Global gradient norm on a fixed probe batch, every "
                              "--monitor-every steps: it spikes before a divergence.",
}


def tag_description(tag: str) -> str:
    """The description TensorBoard shows under the chart of `tag`."""
    if tag in TAG_DESCRIPTIONS:
        return TAG_DESCRIPTIONS[tag]
    if tag.startswith("dynamics/update_ratio/"):
        layer = tag.removeprefix("dynamics/update_ratio/")
        return (f"||dw|| / ||w|| of the trainable weights of the layer named '{layer}' (a "
                "Keras layer name from model.summary()) in one step; ~1e-3 is healthy.")
    return ""


# The tags each writer has described: TensorBoard keeps a tag's first metadata, and
# tf.summary writes a description into every event it is given to (3.5x the bytes of a
# bare scalar for 200 characters).
_DESCRIBED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def write_scalar(writer, tag: str, value: float, step: int | None = None) -> None:
    """One scalar to `writer` (the default writer inside its `as_default()` block), with
    its description the first time this writer writes the tag."""
    import tensorflow as tf

    described = _DESCRIBED.setdefault(writer, set())
    description = None if tag in described else tag_description(tag) or None
    described.add(tag)
    tf.summary.scalar(tag, value, step=step, description=description)


def current_learning_rate(optimizer) -> float:
    """The rate the optimizer applies at its current step (schedules included)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def effective_rate_reader(optimizer) -> Callable[[], float] | None:
    """For a rate-free or schedule-free optimizer (common.optimizers): its
    `effective_learning_rate()`, the step size it applied last (d * lr, DoG's step), which
    is the rate worth logging. None for Keras's own optimizers."""
    read = getattr(optimizer, "effective_learning_rate", None)
    return read if callable(read) else None


def rates_at_steps(schedule) -> Callable[[list[int]], list[float]] | None:
    """For a schedule: a traced function giving its rate at many steps in one call,
    which spares training an eager evaluation of the schedule at every step (about
    0.7 ms each on 2 cores, several percent of a small model's step). None otherwise,
    and off the TensorFlow backend, where a schedule's ops cannot run in a tf.function."""
    if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return None
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    def rate_at(step):
        return tf.cast(schedule(step), tf.float32)

    # Named functions, not lambdas: AutoGraph cannot read a lambda's source and warns.
    @tf.function
    def rates(steps):
        return tf.map_fn(rate_at, steps, fn_output_signature=tf.float32)

    def rates_for(steps: list[int]) -> list[float]:
        return [float(r) for r in rates(tf.constant(steps, tf.int64)).numpy()]

    return rates_for


def schedule_of(optimizer):
    """The schedule an optimizer was built with, or its float rate, read from its public
    config (a schedule comes back as an equal copy)."""
    rate = optimizer.get_config().get("learning_rate")
    if isinstance(rate, dict):
        return keras.optimizers.schedules.deserialize(rate)
    return rate


def recover_batch_loss(running_mean: float, previous_mean: float | None, index: int) -> float:
    """The loss of batch `index` (0-based in its epoch) from Keras's running means."""
    if index == 0 or previous_mean is None:
        return running_mean
    return (index + 1) * running_mean - index * previous_mean


def _log10(rate: float) -> float:
    return math.log10(rate) if rate > 0 and math.isfinite(rate) else math.nan


class StepRecorder(keras.callbacks.Callback):
    """Records, for every training step, the learning rate and the batch's own loss.

    Writes `rate/batch_learning_rate`, `rate/log10_learning_rate` and `loss/batch_loss`
    to TensorBoard every `log_every`
    steps (0: never) and appends rows to `csv_path` at each epoch end.

    Attributes:
        steps, losses: one entry per training step so far.
        learning_rates: the same, complete at each epoch's end and at the end of training
            (a schedule's rates are computed then, in one traced call).
    """

    def __init__(self, log_dir: Path | None = None, csv_path: Path | None = None,
                 log_every: int = 10, first_step: int = 0, schedule=None):
        """`first_step` numbers the first step this fit runs (a resumed run goes on
        from where it stopped); `schedule` is the rate the optimizer was built with
        (a float or a schedule), so rates are computed without reading its internals."""
        super().__init__()
        self.first_step = first_step
        self.schedule = schedule
        self.log_dir = log_dir
        self.csv_path = csv_path
        self.log_every = log_every
        self.steps: list[int] = []
        self.epochs: list[int] = []
        self.learning_rates: list[float] = []
        self.losses: list[float] = []
        self._writer = None
        self._previous_mean: float | None = None
        self._epoch = 0
        self._flushed = 0
        self._next_step = 0
        self._rate = math.nan
        self._rates_at: Callable[[list[int]], list[float]] | None = None
        self._effective_rate: Callable[[], float] | None = None

    def load_previous(self, rows: list[dict[str, str]]) -> None:
        """Carry the steps of an interrupted run into this one (for --resume)."""
        for row in rows:
            self.steps.append(int(row["step"]))
            self.epochs.append(int(row["epoch"]))
            self.learning_rates.append(float(row["learning_rate"]))
            self.losses.append(float(row["loss"]))
        self._flushed = len(self.steps)

    def on_train_begin(self, logs=None):
        self._next_step = self.first_step
        if self.schedule is None:
            self.schedule = schedule_of(self.model.optimizer)
        self._rates_at = rates_at_steps(self.schedule)
        self._effective_rate = effective_rate_reader(self.model.optimizer)
        if self._effective_rate is not None:
            self._rates_at = None  # the applied rate is read after every step instead
        if self.log_dir is not None and self.log_every:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(str(self.log_dir))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._previous_mean = None
        if self._rates_at is None:
            # A plain rate only changes between epochs (plateau reduction).
            self._rate = current_learning_rate(self.model.optimizer)

    def on_train_batch_begin(self, batch, logs=None):
        if self._rates_at is None and callable(self.schedule):
            # A rate given as a function may change at any step: read it before the step.
            self._rate = current_learning_rate(self.model.optimizer)

    def on_train_batch_end(self, batch, logs=None):
        mean = float((logs or {}).get("loss", math.nan))
        loss = recover_batch_loss(mean, self._previous_mean, batch)
        self._previous_mean = mean
        step = self._next_step
        self._next_step += 1
        self.steps.append(step)
        self.epochs.append(self._epoch + 1)  # epochs count from 1, as in plots and history
        self.losses.append(loss)
        if self._effective_rate is not None:
            self._rate = self._effective_rate()
        if self._rates_at is None:
            self.learning_rates.append(self._rate)
        if self._writer is not None and step % self.log_every == 0:

            with self._writer.as_default(step=step):
                write_scalar(self._writer, LOSS_TAG, loss)
                if self._rates_at is None:
                    write_scalar(self._writer, RATE_TAG, self._rate)
                    write_scalar(self._writer, LOG10_RATE_TAG, _log10(self._rate))

    def _fill_rates(self) -> None:
        """A schedule's rates for the steps recorded since the last fill, in one call."""
        missing = self.steps[len(self.learning_rates):]
        if not missing or self._rates_at is None:
            return
        rates = self._rates_at(missing)
        self.learning_rates.extend(rates)
        if self._writer is not None:

            for step, rate in zip(missing, rates, strict=True):
                if step % self.log_every == 0:
                    with self._writer.as_default(step=step):
                        write_scalar(self._writer, RATE_TAG, rate)
                        write_scalar(self._writer, LOG10_RATE_TAG, _log10(rate))

    def on_epoch_end(self, epoch, logs=None):
        self.flush()

    def on_train_end(self, logs=None):
        self.flush()
        if self._writer is not None:
            self._writer.flush()

    def flush(self) -> None:
        self._fill_rates()
        if self.csv_path is None or self._flushed == len(self.steps):
            return
        new_file = not self.csv_path.exists()
        with self.csv_path.open("a", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            if new_file:
                writer.writerow(STEP_FIELDS)
            for i in range(self._flushed, len(self.steps)):
                writer.writerow(
                    (self.steps[i], self.epochs[i], f"{self.learning_rates[i]:.9g}",
                     f"{self.losses[i]:.9g}")
                )
        self._flushed = len(self.steps)


class DivergenceWatch(keras.callbacks.Callback):
    """Stops training at once when the loss diverges.

    Diverged means: a batch loss that is NaN or Inf, or a smoothed loss (bias-corrected
    moving average, `beta`) that is above `factor` times its best so far AND above its
    starting value. The second condition keeps a loss that is tiny and noisy late in
    training (best 0.001, now 0.005) from counting as divergence.

    Attributes:
        diverged: whether it stopped the run.
        reason: a sentence saying why, or "".
        step: the step at which it stopped, or None.
    """

    def __init__(self, recorder: StepRecorder, factor: float = 4.0, beta: float = 0.9,
                 min_steps: int = 5):
        super().__init__()
        if factor <= 1:
            raise ValueError(f"factor must be > 1. Received: factor={factor}")
        self.recorder = recorder
        self.factor = factor
        self.beta = beta
        self.min_steps = min_steps
        self.reset()

    def reset(self) -> None:
        self.diverged = False
        self.reason = ""
        self.step: int | None = None
        self._average = 0.0
        self._count = 0
        self._best = math.inf
        self._first: float | None = None

    def on_train_begin(self, logs=None):
        self.reset()

    def on_train_batch_end(self, batch, logs=None):
        loss = self.recorder.losses[-1]
        step = self.recorder.steps[-1]
        if not math.isfinite(loss):
            self._stop(step, f"the loss became {loss} at step {step}")
            return
        self._count += 1
        self._average = self.beta * self._average + (1 - self.beta) * loss
        smoothed = self._average / (1 - self.beta**self._count)
        if self._first is None:
            self._first = smoothed
        if self._count >= self.min_steps:
            if smoothed > self.factor * self._best and smoothed > self._first:
                self._stop(
                    step,
                    f"the smoothed loss {smoothed:.4g} at step {step} exceeded "
                    f"{self.factor:g}x its best ({self._best:.4g}) and its start "
                    f"({self._first:.4g})",
                )
                return
        self._best = min(self._best, smoothed)

    def _stop(self, step: int, reason: str) -> None:
        self.diverged = True
        self.step = step
        self.reason = reason
        self.model.stop_training = True


PROBE_ATTRIBUTE = "_lrsuite_gradient_probe"


class TrainingDynamics(keras.callbacks.Callback):
    """Every `every` steps, logs the update-to-weight ratio per layer and the global
    gradient norm on a fixed probe batch: the quickest sign of a rate that is too high
    (ratios near 1e-1 and up) or too low (1e-5 and below; ~1e-3 is the usual rule of thumb).

    Args:
        log_dir: TensorBoard folder for the scalars.
        every: interval in steps (>= 1).
        probe_batch: (x, y) used for the gradient norm, or None to skip it.
        loss_fn: the compiled loss, for the gradient norm.
    """

    def __init__(self, log_dir: Path, every: int = 50, probe_batch=None,
                 loss_fn: Callable | None = None):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1. Received: every={every}")
        self.log_dir = log_dir
        self.every = every
        self.probe_batch = probe_batch
        self.loss_fn = loss_fn
        self.records: list[dict[str, float]] = []
        self._writer = None
        self._before: dict[str, list[np.ndarray]] | None = None
        self._step: int | None = None
        self._probe_norm = None  # traced once: an eager forward and backward pass costs
        # several compiled steps, which every `every` steps is most of the overhead

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        self._writer = tf.summary.create_file_writer(str(self.log_dir))
        self._step = None  # read from the optimizer at the first step

    def _groups(self) -> dict[str, list]:
        groups: dict[str, list] = {}
        for layer in self.model.layers:
            weights = [w for w in layer.trainable_weights]
            if weights:
                groups[layer.name] = weights
        return groups

    def on_train_batch_begin(self, batch, logs=None):
        if self._step is None:
            self._step = int(self.model.optimizer.iterations.numpy())
        else:
            self._step += 1  # counted here: reading the optimizer's counter syncs every step
        step = self._step
        if step % self.every == 0:
            self._before = {
                name: [np.array(w.numpy()) for w in weights]
                for name, weights in self._groups().items()
            }

    def on_train_batch_end(self, batch, logs=None):
        if self._before is None:
            return
        step = self._step
        record: dict[str, float] = {"step": float(step)}
        total_update = total_weight = 0.0
        for name, weights in self._groups().items():
            before = self._before.get(name)
            if before is None:
                continue
            update = sum(float(np.sum((w.numpy() - b) ** 2))
                         for w, b in zip(weights, before, strict=True))
            norm = sum(float(np.sum(b**2)) for b in before)
            total_update += update
            total_weight += norm
            record[f"update_ratio/{name}"] = math.sqrt(update) / (math.sqrt(norm) + 1e-12)
        record["update_ratio/global"] = math.sqrt(total_update) / (math.sqrt(total_weight) + 1e-12)
        grad_norm = self._gradient_norm()
        if grad_norm is not None:
            record["gradient_norm"] = grad_norm
        self._before = None
        self.records.append(record)

        with self._writer.as_default(step=step):
            for key, value in record.items():
                if key != "step":
                    write_scalar(self._writer, DYNAMICS_PREFIX + key, value)

    def _gradient_norm(self) -> float | None:
        if self.probe_batch is None or self.loss_fn is None:
            return None
        if keras.backend.backend() != "tensorflow":  # the probe differentiates with a GradientTape
            return None
        import tensorflow as tf

        if self._probe_norm is None:
            cached = getattr(self.model, PROBE_ATTRIBUTE, None)
            if cached is not None and cached[0] is self.loss_fn:
                self._probe_norm = cached[1]
        if self._probe_norm is None:
            model, loss_fn = self.model, self.loss_fn

            @tf.function
            def probe_norm(x, y):
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, model(x, training=False))
                gradients = tape.gradient(loss, model.trainable_weights)
                squares = [tf.reduce_sum(tf.square(tf.cast(g, "float32")))
                           for g in gradients if g is not None]
                return tf.sqrt(tf.add_n(squares)) if squares else tf.constant(-1.0)

            self._probe_norm = probe_norm
            # Kept on the model (and freed with it): a monitor made anew for the same
            # model (alternating bench rounds, a second fit) reuses the trace.
            setattr(model, PROBE_ATTRIBUTE, (loss_fn, probe_norm))
        norm = float(self._probe_norm(*self.probe_batch))
        return norm if norm >= 0 else None

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()


class EpochJournal(keras.callbacks.Callback):
    """Keeps the per-epoch history and calls `on_update(history)` after every epoch,
    so summary.json is current even if the process is killed."""

    def __init__(self, on_update: Callable[[dict[str, list[float]]], None],
                 history: dict[str, list[float]] | None = None):
        super().__init__()
        self.on_update = on_update
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.on_update(self.history)
