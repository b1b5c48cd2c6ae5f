"""What the rate-free and schedule-free optimizers share.

These methods need sums over *all* parameters in each step (a distance travelled, a
gradient norm, a dot product), so they update every variable in one call,
`update_all`, instead of Keras's one `update_step` per variable. Each keeps the step
size it applied last in a scalar variable, read with `effective_learning_rate()`: that
is what the suite logs as the run's learning rate.

Weight decay is part of each method's own update (decoupled, or on the gradient), so
Keras's generic decay (which would multiply by the nominal rate, not d * lr) is off.
"""

from __future__ import annotations

import contextlib
import math

import keras
from keras import ops

PACKAGE = "lrsuite"


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def check_number(name: str, value, *, low: float = 0.0, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False) -> float:
    """A finite real in the given interval, else a one-line ValueError naming `name`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and not (math.isinf(value) and high == math.inf and not high_open):
        ok = math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(f"{name} must be a number in {left}{low:g}, {high:g}{right}. "
                         f"Received: {name}={value!r}")
    return float(value)


def check_flag(name: str, value) -> bool:
    require(isinstance(value, bool), f"{name} must be True or False. Received: {name}={value!r}")
    return value


def check_steps(name: str, value) -> int:
    require(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
            f"{name} must be an integer >= 0. Received: {name}={value!r}")
    return value


def eager_scope():
    """Keras may build an optimizer while tracing the first train step; the state built
    from the weights' values (copies, norms) must be computed once, eagerly, not become
    ops of the step. TensorFlow's init_scope lifts it out of the trace."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.init_scope()
    return contextlib.nullcontext()


def dense(gradient):
    """Embedding gradients arrive as tf.IndexedSlices; these methods need the full tensor."""
    if hasattr(gradient, "indices") and hasattr(gradient, "dense_shape"):
        import tensorflow as tf

        return tf.convert_to_tensor(gradient)
    return gradient


def total(values) -> object:
    """Sum of a list of scalars in float32."""
    out = ops.zeros((), "float32")
    for value in values:
        out = out + ops.cast(value, "float32")
    return out


def sum_squares(tensors) -> object:
    return total(ops.sum(ops.square(ops.cast(t, "float32"))) for t in tensors)


def dot(a_list, b_list) -> object:
    return total(ops.sum(ops.cast(a, "float32") * ops.cast(b, "float32"))
                 for a, b in zip(a_list, b_list, strict=True))


class RateFreeOptimizer(keras.optimizers.Optimizer):
    """Base class: a whole-model update and the effective step size it applied.

    Subclasses implement `build_state(variables)` and
    `update_all(gradients, variables, learning_rate) -> effective_rate`.
    """

    def __init__(self, learning_rate, weight_decay: float = 0.0, name: str | None = None,
                 **kwargs):
        check_number("weight_decay", weight_decay)
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name,
                         **kwargs)

    def build(self, variables):
        if self.built:
            return
        with eager_scope():
            self._build_eagerly(variables)

    def _build_eagerly(self, variables):
        super().build(variables)
        # One replica only: the global sums below would be per replica under tf.distribute.
        strategy = getattr(self, "_distribution_strategy", None)
        if strategy is not None and strategy.num_replicas_in_sync > 1:
            raise ValueError(
                f"optimizer={self.name!r} supports one device only. Received: "
                f"{strategy.num_replicas_in_sync} replicas; use --strategy default")
        self._effective_rate = self.add_variable((), initializer="zeros", dtype="float32",
                                                 name="effective_learning_rate")
        self.build_state(variables)

    def build_state(self, variables) -> None:
        raise NotImplementedError

    def update_all(self, gradients, variables, learning_rate):
        raise NotImplementedError

    def _apply_weight_decay(self, variables):
        return  # each method applies its own decay inside `update_all`

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        grads = [dense(g) for g in grads]
        rate = self.update_all(list(grads), list(trainable_variables),
                               ops.cast(learning_rate, "float32"))
        self._effective_rate.assign(ops.cast(rate, "float32"))

    def effective_learning_rate(self) -> float:
        """The step size applied in the last step (d * lr, DoG's eta, the warmed-up rate),
        or the nominal rate before the first step. This is the value the suite logs."""
        if not self.built or int(ops.convert_to_numpy(self.iterations)) == 0:
            return float(ops.convert_to_numpy(self.learning_rate))
        return float(ops.convert_to_numpy(self._effective_rate))

    def slots(self, variables, name: str, copy: bool = False) -> list:
        """One optimizer variable per model variable, zeros or a copy of its value."""
        out = []
        for variable in variables:
            slot = self.add_variable_from_reference(variable, name)
            if copy:  # a distinct buffer: JAX donates model and optimizer state separately
                slot.assign(ops.copy(variable))
            out.append(slot)
        return out

    def scalar(self, name: str, value: float = 0.0):
        return self.add_variable((), initializer=keras.initializers.Constant(value),
                                 dtype="float32", name=name)

    def slot_for(self, slots: list, variable):
        return slots[self._get_variable_index(variable)]
