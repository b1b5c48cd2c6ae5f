"""Optimizers that estimate the rate themselves: Prodigy, D-Adaptation Adam, DoG.

Prodigy and D-Adaptation scale Adam's step by d, a running lower bound on the distance
from the initial point to a solution; `learning_rate` then multiplies d and is meant to
stay at 1 (or follow a schedule that starts at 1). DoG sets an SGD step from the largest
distance travelled over the root of the summed squared gradient norms.

Defaults are the authors' reference implementations (prodigyopt, dadaptation,
dog-optimizer). Where optax.contrib differs, the authors' code wins and the difference
is a switch: optax always applies Adam's bias correction, the authors' default is off
(`bias_correction=False`; the optax comparison test turns it on).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from common.optimizers.base import (
    PACKAGE,
    RateFreeOptimizer,
    check_flag,
    check_number,
    dot,
    sum_squares,
    total,
)


def _adam_bias_correction(step, beta_1: float, beta_2: float):
    return ops.sqrt(1.0 - ops.power(beta_2, step)) / (1.0 - ops.power(beta_1, step))


def _grow(d, d_hat, growth_rate: float):
    """d never shrinks and grows at most `growth_rate` times per step."""
    if math.isinf(growth_rate):
        return ops.maximum(d, d_hat)
    return ops.maximum(d, ops.minimum(d_hat, d * growth_rate))


@keras.saving.register_keras_serializable(package=PACKAGE)
class Prodigy(RateFreeOptimizer):
    """Prodigy (Mishchenko & Defazio, 2023): D-Adaptation Adam that weights recent
    gradients more, so d grows faster. Effective rate: d * learning_rate (times Adam's
    bias correction when it is on).

    Args:
        learning_rate: multiplier of d; keep 1.0 (or a schedule starting at 1).
        beta_1, beta_2: Adam's moment decays.
        beta_3: decay of the d-estimate sums (None: sqrt(beta_2)).
        epsilon: Adam's epsilon (scaled by d).
        weight_decay: decoupled decay, times d * lr.
        d0: initial d, a deliberate under-estimate.
        d_coef: multiplies every estimate of d (< 1 more cautious, > 1 bolder).
        growth_rate: the most d may grow per step (inf: no limit).
        safeguard_warmup: leave lr out of the estimate's denominator (for warmups).
        bias_correction: Adam's bias correction in the step size.
    """

    def __init__(self, learning_rate=1.0, beta_1=0.9, beta_2=0.999, beta_3=None,
                 epsilon=1e-8, weight_decay=0.0, d0=1e-6, d_coef=1.0, growth_rate=math.inf,
                 safeguard_warmup=False, bias_correction=False, name="prodigy", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.beta_1 = check_number("beta_1", beta_1, high=1, high_open=True)
        self.beta_2 = check_number("beta_2", beta_2, high=1, high_open=True)
        if beta_3 is not None:
            beta_3 = check_number("beta_3", beta_3, high=1, high_open=True)
        self.beta_3 = beta_3
        self.epsilon = check_number("epsilon", epsilon, low_open=True)
        self.d0 = check_number("d0", d0, low_open=True)
        self.d_coef = check_number("d_coef", d_coef, low_open=True)
        self.growth_rate = check_number("growth_rate", growth_rate, low=1)
        self.safeguard_warmup = check_flag("safeguard_warmup", safeguard_warmup)
        self.bias_correction = check_flag("bias_correction", bias_correction)

    def build_state(self, variables):
        self._m = self.slots(variables, "exp_avg")
        self._v = self.slots(variables, "exp_avg_sq")
        self._s = self.slots(variables, "grad_sum")
        self._x0 = self.slots(variables, "initial", copy=True)
        self._d = self.scalar("d", self.d0)
        self._d_max = self.scalar("d_max", self.d0)
        self._numerator = self.scalar("numerator")

    def update_all(self, gradients, variables, learning_rate):
        b1, b2 = self.beta_1, self.beta_2
        b3 = self.beta_3 if self.beta_3 is not None else b2**0.5
        step = ops.cast(self.iterations + 1, "float32")
        d = ops.convert_to_tensor(self._d)
        scale = _adam_bias_correction(step, b1, b2) if self.bias_correction else 1.0
        dlr = d * learning_rate * scale
        x0 = [self.slot_for(self._x0, v) for v in variables]
        numerator_step = dot(gradients, [a - v for a, v in zip(x0, variables, strict=True)])
        s_rate = d if self.safeguard_warmup else dlr
        denominators = []
        for g, v in zip(gradients, variables, strict=True):
            g = ops.cast(g, "float32")
            m, v2, s = (self.slot_for(slots, v) for slots in (self._m, self._v, self._s))
            dg = d * g  # the operations in optax's order: d grows from rounding-level
            # differences, so the same order keeps the two within 1e-5 over many steps
            self.assign(m, b1 * m + (1 - b1) * dg)
            self.assign(v2, b2 * v2 + (1 - b2) * dg * dg)
            self.assign(s, b3 * s + s_rate * dg / self.d0)
            denominators.append(ops.sum(ops.abs(s)))
        numerator = b3 * self._numerator + (d / self.d0) * dlr * numerator_step
        self.assign(self._numerator, numerator)
        denominator = total(denominators)
        d_hat = self.d_coef * numerator / ops.where(denominator > 0, denominator, 1.0)
        # As the reference: the first estimate above d0 is taken whole, later ones
        # through growth_rate; d_max remembers the largest estimate.
        d_max_before = ops.convert_to_tensor(self._d_max)
        d_max = ops.maximum(d_max_before, d_hat)
        d_start = ops.where(d == self.d0, ops.maximum(d, d_hat), d)
        new_d = ops.minimum(d_max, d_start * self.growth_rate)
        new_d = ops.where(denominator > 0, new_d, d)  # a zero gradient leaves d alone
        self.assign(self._d_max, ops.where(denominator > 0, d_max, d_max_before))
        self.assign(self._d, new_d)
        for v in variables:
            m, v2 = self.slot_for(self._m, v), self.slot_for(self._v, v)
            decay = self.weight_decay * dlr * v
            self.assign_sub(v, decay + dlr * m / (ops.sqrt(v2) + new_d * self.epsilon))
        return dlr

    def get_config(self):
        config = super().get_config()
        config.update({
            "beta_1": self.beta_1, "beta_2": self.beta_2, "beta_3": self.beta_3,
            "epsilon": self.epsilon, "d0": self.d0, "d_coef": self.d_coef,
            "growth_rate": self.growth_rate, "safeguard_warmup": self.safeguard_warmup,
            "bias_correction": self.bias_correction,
        })
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class DAdaptAdam(RateFreeOptimizer):
    """D-Adaptation Adam (Defazio & Mishchenko, 2023). Effective rate: d * learning_rate
    (times Adam's bias correction when it is on). Weight decay is decoupled (AdamW), as
    in optax and the suite's --weight-decay; the authors' class also offers L2.

    Args:
        learning_rate: multiplier of d; keep 1.0 (or a schedule starting at 1).
        beta_1, beta_2: Adam's moment decays.
        epsilon: Adam's epsilon.
        weight_decay: decoupled decay, times d * lr.
        d0: initial d, a deliberate under-estimate.
        growth_rate: the most d may grow per step (inf: no limit).
        bias_correction: Adam's bias correction in the step size.
    """

    def __init__(self, learning_rate=1.0, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 weight_decay=0.0, d0=1e-6, growth_rate=math.inf, bias_correction=False,
                 name="dadapt_adam", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.beta_1 = check_number("beta_1", beta_1, high=1, high_open=True)
        self.beta_2 = check_number("beta_2", beta_2, high=1, high_open=True)
        self.epsilon = check_number("epsilon", epsilon, low_open=True)
        self.d0 = check_number("d0", d0, low_open=True)
        self.growth_rate = check_number("growth_rate", growth_rate, low=1)
        self.bias_correction = check_flag("bias_correction", bias_correction)

    def build_state(self, variables):
        self._m = self.slots(variables, "exp_avg")
        self._v = self.slots(variables, "exp_avg_sq")
        self._s = self.slots(variables, "grad_sum")
        self._d = self.scalar("d", self.d0)
        self._numerator = self.scalar("numerator")

    def update_all(self, gradients, variables, learning_rate):
        b1, b2 = self.beta_1, self.beta_2
        root_b2 = b2**0.5
        step = ops.cast(self.iterations + 1, "float32")
        d = ops.convert_to_tensor(self._d)
        scale = _adam_bias_correction(step, b1, b2) if self.bias_correction else 1.0
        dlr = d * learning_rate * scale
        weighted = [self.slot_for(self._s, v) / (ops.sqrt(self.slot_for(self._v, v))
                                                 + self.epsilon) for v in variables]
        numerator_step = dot(gradients, weighted)
        sums = []
        for g, v in zip(gradients, variables, strict=True):
            g = ops.cast(g, "float32")
            m, v2, s = (self.slot_for(slots, v) for slots in (self._m, self._v, self._s))
            self.assign(m, b1 * m + (1 - b1) * dlr * g)
            self.assign(v2, b2 * v2 + (1 - b2) * g * g)
            self.assign(s, root_b2 * s + (1 - root_b2) * dlr * g)
            sums.append(ops.sum(ops.abs(s)))
        numerator = root_b2 * self._numerator + (1 - root_b2) * dlr * numerator_step
        self.assign(self._numerator, numerator)
        s_norm = total(sums)
        d_hat = numerator / ((1 - root_b2) * ops.where(s_norm > 0, s_norm, 1.0))
        self.assign(self._d, ops.where(s_norm > 0, _grow(d, d_hat, self.growth_rate), d))
        for v in variables:
            m, v2 = self.slot_for(self._m, v), self.slot_for(self._v, v)
            self.assign_sub(v, self.weight_decay * dlr * v + m / (ops.sqrt(v2) + self.epsilon))
        return dlr

    def get_config(self):
        config = super().get_config()
        config.update({
            "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
            "d0": self.d0, "growth_rate": self.growth_rate,
            "bias_correction": self.bias_correction,
        })
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class DoG(RateFreeOptimizer):
    """DoG, Distance over Gradients (Ivgi, Hinder & Carmon, 2023): SGD with step
    eta_t = lr * max_k ||x_k - x_0|| / sqrt(sum_k ||g_k||^2 + eps), one global step for
    all parameters. Effective rate: eta_t.

    Args:
        learning_rate: multiplier of eta; keep 1.0.
        reps_rel: the first "distance" is reps_rel * (1 + ||x_0||) (the authors advise
            1e-6, or 1e-4 with batch normalisation).
        epsilon: added to the sum of squared gradient norms.
        weight_decay: L2 decay added to the gradient (as the authors and optax do).
        init_eta: if set, the first step's eta (times lr) instead of the heuristic.
    """

    def __init__(self, learning_rate=1.0, reps_rel=1e-6, epsilon=1e-8, weight_decay=0.0,
                 init_eta=None, name="dog", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.reps_rel = check_number("reps_rel", reps_rel, low_open=True)
        self.epsilon = check_number("epsilon", epsilon, low_open=True)
        if init_eta is not None:
            init_eta = check_number("init_eta", init_eta, low_open=True)
        self.init_eta = init_eta

    def build_state(self, variables):
        self._x0 = self.slots(variables, "initial", copy=True)
        start = 0.0
        if self.init_eta is None:
            norm = math.sqrt(float(ops.convert_to_numpy(sum_squares(variables))))
            start = self.reps_rel * (1.0 + norm)
        self._max_distance = self.scalar("max_distance", start)
        self._gradient_sum = self.scalar("gradient_sum")

    def update_all(self, gradients, variables, learning_rate):
        gradients = [ops.cast(g, "float32") + self.weight_decay * ops.cast(v, "float32")
                     for g, v in zip(gradients, variables, strict=True)]
        x0 = [self.slot_for(self._x0, v) for v in variables]
        distance = ops.sqrt(sum_squares([v - a for v, a in zip(variables, x0, strict=True)]))
        max_distance = ops.maximum(ops.convert_to_tensor(self._max_distance), distance)
        gradient_sum = self._gradient_sum + sum_squares(gradients)
        eta = max_distance / ops.sqrt(gradient_sum + self.epsilon)
        if self.init_eta is not None:
            eta = ops.where(ops.convert_to_tensor(self.iterations) == 0, self.init_eta, eta)
        eta = eta * learning_rate
        self.assign(self._max_distance, max_distance)
        self.assign(self._gradient_sum, gradient_sum)
        for g, v in zip(gradients, variables, strict=True):
            self.assign_sub(v, eta * g)
        return eta

    def get_config(self):
        config = super().get_config()
        config.update({"reps_rel": self.reps_rel, "epsilon": self.epsilon,
                       "init_eta": self.init_eta})
        return config
