"""Weight averaging: an exponential moving average (EMA) of the weights, evaluated and
saved in place of the raw weights (Polyak averaging; the EMA of timm and TF's
`ExponentialMovingAverage`).

The average is Keras's own (`use_ema=True`): one slot per trainable variable, updated
inside the compiled step and saved with the optimizer. Two changes to Keras's version:

- the momentum warms up, min(m, (1 + t) / (10 + t)) at step t as in TF's
  `ExponentialMovingAverage(num_updates=...)`, so a short run is not an average
  dominated by the initial weights (Keras's is m from the second step on);
- Keras copies the average into the model at the end of `fit`, which leaves nothing to
  resume from. Here `AveragedWeightsSwap` exchanges the model's variables with the
  average slots instead, so both survive: inside an epoch the model holds the raw
  weights (where gradients are taken) and at every other moment (validation, epoch
  ends, after `fit`) it holds the average and the slots hold the raw weights. A
  checkpoint taken at an epoch end is therefore always in the swapped state.
"""

from __future__ import annotations

import types

import keras
from keras import ops

WARMUP_OFFSET = 10.0  # TF's ExponentialMovingAverage: (1 + t) / (10 + t)


def enable_weight_averaging(optimizer: keras.optimizers.Optimizer, momentum: float) -> None:
    """Make `optimizer` keep an average of the weights; call before it is built."""
    if optimizer.built:
        raise RuntimeError("enable_weight_averaging must run before the optimizer is built")
    optimizer.use_ema = True
    optimizer.ema_momentum = float(momentum)
    optimizer.ema_overwrite_frequency = None
    optimizer._update_model_variables_moving_average = types.MethodType(
        _update_average_with_warmup, optimizer)
    # AveragedWeightsSwap, not fit's end, decides what the model holds.
    optimizer.finalize_variable_values = types.MethodType(_keep_values, optimizer)


def averages_weights(optimizer) -> bool:
    return bool(getattr(optimizer, "use_ema", False))


def _update_average_with_warmup(self, trainable_variables):
    step = ops.cast(self.iterations, "float32")
    warmed = ops.minimum(self.ema_momentum, (1.0 + step) / (WARMUP_OFFSET + step))
    # Step 0 copies the weights: the slots start at zero.
    momentum = ops.where(ops.equal(self.iterations, 0), 0.0, warmed)
    for variable, average in zip(trainable_variables, self._model_variables_moving_average,
                                 strict=True):
        if average is None:
            continue
        m = ops.cast(momentum, variable.dtype)
        average.assign(m * average + (1.0 - m) * variable)


def _keep_values(self, var_list):
    return None


def swap_weights_and_average(optimizer) -> None:
    """Exchange the model's trainable variables with their average slots."""
    for variable, average in zip(optimizer._trainable_variables,
                                 optimizer._model_variables_moving_average, strict=True):
        if average is None:
            continue
        held = ops.convert_to_numpy(variable)  # a copy: a read tensor may alias the buffer
        variable.assign(average)
        average.assign(held)


class AveragedWeightsSwap(keras.callbacks.Callback):
    """Raw weights in the model while it takes training steps, the average at every
    other moment of `fit`. Must come first in the callback list, so that
    BackupAndRestore, EarlyStopping's best weights and ModelCheckpoint see the average.

    Whether the model holds the average follows from the step count: before the first
    step it holds the (only) weights; after any step, outside an epoch, the average.
    """

    def __init__(self, optimizer):
        super().__init__()
        self._optimizer = optimizer
        self._raw_in_model = False
        self._during_epoch = False  # a validation inside fit, not evaluate() after it

    def _steps_taken(self) -> bool:
        return self._optimizer.built and int(ops.convert_to_numpy(self._optimizer.iterations)) > 0

    def _to_raw(self) -> None:
        if not self._raw_in_model and self._steps_taken():
            swap_weights_and_average(self._optimizer)
        self._raw_in_model = True

    def _to_average(self) -> None:
        if self._raw_in_model and self._steps_taken():
            swap_weights_and_average(self._optimizer)
            self._raw_in_model = False

    def on_epoch_begin(self, epoch, logs=None):
        self._to_raw()

    def on_test_begin(self, logs=None):
        self._during_epoch = self._raw_in_model
        self._to_average()

    def on_test_end(self, logs=None):
        if self._during_epoch:
            self._to_raw()
            self._during_epoch = False

    def on_epoch_end(self, epoch, logs=None):
        self._to_average()

    def on_train_end(self, logs=None):
        self._to_average()
