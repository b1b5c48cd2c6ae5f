"""Schedule-Free AdamW and SGD (Defazio et al., "The Road Less Scheduled", 2024).

Three sequences: z takes the base optimizer's steps, x is a weighted average of the
z's, and gradients are taken at y = beta_1 * x + (1 - beta_1) * z. The model's
variables hold y while it trains; z is an optimizer slot; x is recomputed from the two,
x = (y - (1 - beta_1) * z) / beta_1, as the authors and optax do (no third copy).

Evaluation, prediction and saving must see x: `to_eval()` puts x in the model's
variables and `to_train()` puts y back; a flag variable (saved with the optimizer) says
which one the model holds, so a checkpoint or saved model is never ambiguous.
`ScheduleFreeSwap` (see `common.optimizers.callbacks_for`) calls them at the right
moments of `fit`.

Warmup follows the authors' code: at 0-based step k the rate is lr * min(1, (k + 1) /
warmup_steps). optax's `warmup_steps` uses k / warmup_steps for the z step but
(k + 1) / warmup_steps for the averaging weight, one step apart; the authors' version
is self-consistent, so it is the one here (the optax test shifts optax's schedule).
"""

from __future__ import annotations

import keras
from keras import ops

from common.optimizers.base import (
    PACKAGE,
    RateFreeOptimizer,
    check_number,
    check_steps,
)


class ScheduleFree(RateFreeOptimizer):
    """The shared averaging; subclasses give the base step `direction(g, y, step)`."""

    def __init__(self, learning_rate, beta_1=0.9, warmup_steps=0, weight_lr_power=2.0,
                 weight_decay=0.0, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.beta_1 = check_number("beta_1", beta_1, high=1, low_open=True, high_open=True)
        self.warmup_steps = check_steps("warmup_steps", warmup_steps)
        self.weight_lr_power = check_number("weight_lr_power", weight_lr_power)

    def build_state(self, variables):
        self._z = self.slots(variables, "z", copy=True)
        self.build_base(variables)
        self._weight_sum = self.scalar("weight_sum")
        self._lr_max = self.scalar("lr_max")
        self._holds_x = self.scalar("model_holds_x")

    def build_base(self, variables) -> None:
        return

    def direction(self, gradient, variable, step):
        raise NotImplementedError

    def warmed_up(self, learning_rate, step):
        if not self.warmup_steps:
            return learning_rate
        return learning_rate * ops.minimum(1.0, step / float(self.warmup_steps))

    def update_all(self, gradients, variables, learning_rate):
        b1 = self.beta_1
        step = ops.cast(self.iterations + 1, "float32")
        rate = self.warmed_up(learning_rate, step)
        lr_max = ops.maximum(ops.convert_to_tensor(self._lr_max), rate)
        weight = ops.power(lr_max, self.weight_lr_power)
        weight_sum = self._weight_sum + weight
        c = ops.where(weight_sum > 0, weight / ops.where(weight_sum > 0, weight_sum, 1.0), 0.0)
        self.assign(self._lr_max, lr_max)
        self.assign(self._weight_sum, weight_sum)
        for g, y in zip(gradients, variables, strict=True):
            z = self.slot_for(self._z, y)
            u = self.direction(ops.cast(g, "float32"), y, step) + self.weight_decay * y
            new_z = z - rate * u
            x = (y - (1.0 - b1) * z) / b1
            new_x = (1.0 - c) * x + c * new_z
            self.assign(z, new_z)
            self.assign(y, b1 * new_x + (1.0 - b1) * new_z)
        return rate

    # -- the two sequences ------------------------------------------------------------
    def holds_x(self) -> bool:
        return self.built and float(ops.convert_to_numpy(self._holds_x)) > 0.5

    def to_eval(self) -> None:
        """Put x (the average, the one to evaluate and save) in the model's variables."""
        if not self.built or self.holds_x():
            return
        b1 = self.beta_1
        for y, z in zip(self._trainable_variables, self._z, strict=True):
            y.assign((y - (1.0 - b1) * z) / b1)
        self._holds_x.assign(1.0)

    def to_train(self) -> None:
        """Put y (where gradients are taken) back in the model's variables."""
        if not self.built or not self.holds_x():
            return
        b1 = self.beta_1
        for x, z in zip(self._trainable_variables, self._z, strict=True):
            x.assign(b1 * x + (1.0 - b1) * z)
        self._holds_x.assign(0.0)

    def eval_values(self) -> list:
        """x as arrays, without touching the model (for tests and inspection)."""
        if self.holds_x():
            return [ops.convert_to_numpy(v) for v in self._trainable_variables]
        b1 = self.beta_1
        return [ops.convert_to_numpy((y - (1.0 - b1) * z) / b1)
                for y, z in zip(self._trainable_variables, self._z, strict=True)]

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "warmup_steps": self.warmup_steps,
                       "weight_lr_power": self.weight_lr_power})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScheduleFreeAdamW(ScheduleFree):
    """Schedule-Free AdamW: z takes Adam steps without momentum (the averaging replaces
    it); weight decay is applied at y, times the rate. Effective rate: the warmed-up lr.

    Args:
        learning_rate: the constant rate (authors' default 0.0025).
        beta_1: interpolation between x and z (0.9; 0.95 or 0.98 for long runs).
        beta_2: decay of the squared-gradient average.
        epsilon: added to the root of the bias-corrected squared average.
        weight_decay: decay at y, times the rate (as the authors and optax).
        warmup_steps: linear warmup length (0: none).
        weight_lr_power: averaging weights are lr_max ** power (down-weights warmup).
    """

    def __init__(self, learning_rate=0.0025, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 weight_decay=0.0, warmup_steps=0, weight_lr_power=2.0,
                 name="schedule_free_adamw", **kwargs):
        super().__init__(learning_rate, beta_1=beta_1, warmup_steps=warmup_steps,
                         weight_lr_power=weight_lr_power, weight_decay=weight_decay,
                         name=name, **kwargs)
        self.beta_2 = check_number("beta_2", beta_2, high=1, high_open=True)
        self.epsilon = check_number("epsilon", epsilon, low_open=True)

    def build_base(self, variables):
        self._v = self.slots(variables, "exp_avg_sq")

    def direction(self, gradient, variable, step):
        v = self.slot_for(self._v, variable)
        b2 = self.beta_2
        self.assign(v, b2 * v + (1.0 - b2) * gradient * gradient)
        corrected = v / (1.0 - ops.power(b2, step))
        return gradient / (ops.sqrt(corrected) + self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_2": self.beta_2, "epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScheduleFreeSGD(ScheduleFree):
    """Schedule-Free SGD: z takes plain gradient steps (weight decay at y, times the
    rate). Effective rate: the warmed-up lr. Defaults as the authors' (lr 1.0, beta_1
    0.9); the rate usually needs tuning down for networks.
    """

    def __init__(self, learning_rate=1.0, beta_1=0.9, weight_decay=0.0, warmup_steps=0,
                 weight_lr_power=2.0, name="schedule_free_sgd", **kwargs):
        super().__init__(learning_rate, beta_1=beta_1, warmup_steps=warmup_steps,
                         weight_lr_power=weight_lr_power, weight_decay=weight_decay,
                         name=name, **kwargs)

    def direction(self, gradient, variable, step):
        return gradient


class ScheduleFreeSwap(keras.callbacks.Callback):
    """Keeps a schedule-free model on y while it takes training steps and on x at every
    other moment of `fit`: validation, epoch ends (so BackupAndRestore, EarlyStopping's
    best weights and ModelCheckpoint keep x), and after training (test evaluation and
    `model.save`). Must come first in the callback list so later callbacks see x.

    Resume is exact: a backup holds x and z and the flag; the next epoch rebuilds y from
    them with the same float operations an uninterrupted run performs.
    """

    def __init__(self, optimizer: ScheduleFree):
        super().__init__()
        self._optimizer = optimizer

    def on_epoch_begin(self, epoch, logs=None):
        self._optimizer.to_train()

    def on_test_begin(self, logs=None):
        self._optimizer.to_eval()

    def on_predict_begin(self, logs=None):
        self._optimizer.to_eval()

    def on_epoch_end(self, epoch, logs=None):
        self._optimizer.to_eval()

    def on_train_end(self, logs=None):
        self._optimizer.to_eval()
