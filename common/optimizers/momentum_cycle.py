"""One-cycle's momentum: high while the rate is low, low while it is high (Smith 2018;
fastai's fit_one_cycle: 0.95 -> 0.85 -> 0.95), for SGD with momentum and for the Adam
family's beta_1.

Keras's optimizers read `momentum` / `beta_1` as Python floats, so the value is baked
into the traced train step. `MomentumCycle` swaps the attribute for a variable, which the
traced step reads at every call, and sets that variable before each step; after training
the float comes back so `get_config` and `model.save` see a number. The variable is not
added to the optimizer's tracked state: it is a function of the step, restored from the
step counter on resume, and checkpoints keep their layout.
"""

from __future__ import annotations

import warnings

import keras

from common.optimizers.base import RateFreeOptimizer


class CycledMomentum(keras.Variable):
    """A momentum set every step. Compared with a number it is never equal (SGD's Python
    check `momentum != 0` keeps the momentum branch it was configured with)."""

    def __eq__(self, other):
        if isinstance(other, (int, float)):
            return False
        return super().__eq__(other)

    def __ne__(self, other):
        if isinstance(other, (int, float)):
            return True
        return super().__ne__(other)

    def __hash__(self):
        return id(self)


def momentum_attribute(optimizer) -> str | None:
    """'beta_1' (Adam family, Lion), 'momentum' (SGD with momentum), or None."""
    if isinstance(optimizer, RateFreeOptimizer):
        return None  # their beta_1 is part of the rate estimate or of the averaging
    if isinstance(optimizer, keras.optimizers.SGD):
        return "momentum" if float(optimizer.momentum) > 0 else None
    if isinstance(getattr(optimizer, "beta_1", None), (int, float)):
        return "beta_1"
    return None


class MomentumCycle(keras.callbacks.Callback):
    """Sets the optimizer's momentum from `schedule.momentum(step)` before every step and
    writes `batch_momentum` to TensorBoard every `log_every` steps.

    Attributes:
        steps, momentums: the momentum applied at each step of this fit.
    """

    def __init__(self, optimizer, schedule, log_dir=None, log_every: int = 10):
        super().__init__()
        self._optimizer = optimizer
        self._schedule = schedule
        self._attribute = momentum_attribute(optimizer)
        self.log_dir = log_dir
        self.log_every = log_every
        self.steps: list[int] = []
        self.momentums: list[float] = []
        self._configured = getattr(optimizer, self._attribute) if self._attribute else None
        self._variable = None
        self._writer = None
        self._step = 0
        if self._attribute and keras.backend.backend() != "tensorflow":
            warnings.warn("one_cycle momentum cycling needs the TensorFlow backend; the "
                          "momentum stays constant", stacklevel=2)
            self._attribute = None
        self._install()

    def _install(self) -> None:
        if self._attribute is None:
            return
        if self._variable is None:  # one variable for every fit: a traced step keeps it
            first = self._schedule.momentum(0)
            self._variable = CycledMomentum(first, dtype="float32", trainable=False,
                                            name=f"cycled_{self._attribute}")
        # object.__setattr__: the optimizer's own __setattr__ would track the variable.
        object.__setattr__(self._optimizer, self._attribute, self._variable)

    def on_train_begin(self, logs=None):
        self._install()
        self._step = int(keras.ops.convert_to_numpy(self._optimizer.iterations))
        if self._attribute and self.log_dir is not None and self.log_every:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(str(self.log_dir))

    def on_train_batch_begin(self, batch, logs=None):
        if self._variable is None:
            return
        value = self._schedule.momentum(self._step)
        self._variable.assign(value)
        self.steps.append(self._step)
        self.momentums.append(value)
        if self._writer is not None and self._step % self.log_every == 0:
            import tensorflow as tf

            with self._writer.as_default(step=self._step):
                tf.summary.scalar("batch_momentum", value)
        self._step += 1

    def on_train_end(self, logs=None):
        if self._variable is not None:
            object.__setattr__(self._optimizer, self._attribute, self._configured)
        if self._writer is not None:
            self._writer.flush()
