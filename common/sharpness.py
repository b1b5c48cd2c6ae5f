"""Sharpness: the top eigenvalue of the training loss's Hessian, against the rate's
stability threshold.

Gradient descent on a quadratic with curvature h is stable only while lr * h < 2; with
full-batch training the sharpness rises until it reaches 2/lr and hovers there, the "edge
of stability" (Cohen et al., ICLR 2021). For an adaptive optimizer the quantity that
meets the threshold is the preconditioned sharpness, the top eigenvalue of P^-1 H with P
the optimizer's per-weight denominator (Cohen et al. 2022). A rate is too high for a model
when the sharpness cannot stay under its threshold.

The eigenvalue comes from power iteration on Hessian-vector products on a fixed probe
batch, warm-started from the previous call's vector. The loss is the training loss
(training=True: batch normalisation on the batch's statistics; in inference mode, early
in training, its moving statistics describe another function, with a Hessian hundreds of
times sharper) run as a stateless call: the new moving statistics and the advanced dropout
seed states it returns are dropped, so a probe changes nothing that training reads (each
probe holds one dropout mask through its iterations) and runs with and without it, and a
resumed run, stay bit-identical. Power iteration finds the eigenvalue largest in
magnitude. When that one is negative (strong negative curvature, early in training), or when
a positive and a negative eigenvalue of about the same size share the lead (after a loss
spike at the edge of stability: the iteration then settles on a mix of the two, whose
Rayleigh quotient can be anything between them, 0 included), the Rayleigh quotient falls
short of |H v|. A second run on the shifted Hessian H + |H v| I, whose eigenvalues are all
>= 0, then finds the top (most positive) one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

SGD_STABILITY_CONSTANT = 2.0  # gradient descent: stable while lr * sharpness < 2
DEFAULT_ITERATIONS = 20  # power iterations per probe (fewer once converged)
DEFAULT_TOLERANCE = 1e-3  # stop when the estimate moves by less than this share
MIN_ITERATIONS = 3  # ... but never before this many
# Shift when the Rayleigh quotient is under this share of |H v| (about 1 once one
# positive eigenvalue dominates; a pure +-lambda mix gives anything from -1 to 1).
DOMINANCE_SHARE = 0.9
INITIAL_VECTOR_SEED = 0  # a local generator: the training's random state is not read
PROBE_ATTRIBUTE = "_lrsuite_hessian_probe"  # traced functions kept on the model

ADAM_FAMILY = ("Adam", "AdamW", "Nadam", "Adamax")


def sgd_threshold(learning_rate: float) -> float:
    """2/lr: the largest curvature plain gradient descent can follow without blowing up."""
    return SGD_STABILITY_CONSTANT / learning_rate


def heavy_ball_threshold(learning_rate: float, momentum: float) -> float:
    """(2 + 2 beta)/lr for heavy-ball momentum (Cohen et al. 2021, appendix)."""
    return (2.0 + 2.0 * momentum) / learning_rate


def nesterov_threshold(learning_rate: float, momentum: float) -> float:
    """(2 + 2 beta)/((1 + 2 beta) lr) for Nesterov momentum (the same appendix)."""
    return (2.0 + 2.0 * momentum) / ((1.0 + 2.0 * momentum) * learning_rate)


def adam_threshold(learning_rate: float, beta_1: float) -> float:
    """(2 + 2 beta_1)/((1 - beta_1) lr) for the preconditioned sharpness of Adam:
    38/lr at beta_1 = 0.9 (Cohen et al. 2022)."""
    return (2.0 + 2.0 * beta_1) / ((1.0 - beta_1) * learning_rate)


@dataclass(frozen=True)
class StabilityRule:
    """Which sharpness an optimizer is held to and the threshold it must stay under."""

    label: str  # e.g. "2/lr", "38/lr"
    preconditioned: bool
    threshold: Callable[[float], float]


def stability_rule(optimizer) -> StabilityRule:
    """The rule for a Keras optimizer. Optimizers without one (Lion, Adadelta) get the
    raw sharpness and a NaN threshold."""
    kind = type(optimizer).__name__
    if kind == "SGD":
        beta = float(optimizer.momentum)
        if not beta:
            return StabilityRule("2/lr", False, sgd_threshold)
        if optimizer.nesterov:
            label = f"{(2 + 2 * beta) / (1 + 2 * beta):.3g}/lr"
            return StabilityRule(label, False, lambda lr: nesterov_threshold(lr, beta))
        return StabilityRule(f"{2 + 2 * beta:.3g}/lr", False,
                             lambda lr: heavy_ball_threshold(lr, beta))
    if kind in ADAM_FAMILY:
        beta_1 = float(optimizer.beta_1)
        label = f"{(2 + 2 * beta_1) / (1 - beta_1):.3g}/lr"
        return StabilityRule(label, True, lambda lr: adam_threshold(lr, beta_1))
    if kind == "RMSprop":
        beta = float(optimizer.momentum)
        if beta:
            return StabilityRule(f"{2 + 2 * beta:.3g}/lr", True,
                                 lambda lr: heavy_ball_threshold(lr, beta))
        return StabilityRule("2/lr", True, sgd_threshold)
    if kind == "Adagrad":
        return StabilityRule("2/lr", True, sgd_threshold)
    return StabilityRule("none", False, lambda lr: math.nan)


def preconditioner(optimizer, weights: Sequence) -> list[np.ndarray] | None:
    """P per weight: what the optimizer divides each gradient component by, read from
    its second-moment slots and bias-corrected; None when it has none (SGD) or has not
    taken a step yet (its slots are still zero).

    Adam/AdamW divide by (sqrt(v) + eps)/sqrt(1 - beta_2^t) in Keras, which is
    sqrt(v_hat) + eps/sqrt(1 - beta_2^t): Cohen et al.'s sqrt(v_hat) + eps up to where eps
    is added. Nadam divides by sqrt(v_hat) + eps, Adamax by u + eps (its bias correction
    is on the first moment), RMSprop and Adagrad by sqrt(slot + eps).
    """
    kind = type(optimizer).__name__
    steps = int(keras.ops.convert_to_numpy(optimizer.iterations))
    if steps == 0 or not stability_rule(optimizer).preconditioned:
        return None
    eps = float(optimizer.epsilon)

    def slot(slots) -> list[np.ndarray]:
        return [np.asarray(keras.ops.convert_to_numpy(slots[optimizer._get_variable_index(w)]),
                           dtype=np.float64) for w in weights]

    if kind in ("Adam", "AdamW"):
        correction = math.sqrt(1.0 - float(optimizer.beta_2) ** steps)
        return [(np.sqrt(v) + eps) / correction for v in slot(optimizer._velocities)]
    if kind == "Nadam":
        correction = 1.0 - float(optimizer.beta_2) ** steps
        return [np.sqrt(v / correction) + eps for v in slot(optimizer._velocities)]
    if kind == "Adamax":
        return [u + eps for u in slot(optimizer._u)]
    if kind == "RMSprop":
        velocities = slot(optimizer._velocities)
        if optimizer.centered:
            averages = slot(optimizer._average_gradients)
            return [np.sqrt(v - a**2 + eps) for v, a in zip(velocities, averages, strict=True)]
        return [np.sqrt(v + eps) for v in velocities]
    if kind == "Adagrad":
        return [np.sqrt(a + eps) for a in slot(optimizer._accumulators)]
    return None


def initial_vectors(weights: Sequence) -> list[np.ndarray]:
    """A fixed random start, from a generator of its own (never the global seed state)."""
    rng = np.random.default_rng(INITIAL_VECTOR_SEED)
    return [rng.standard_normal(tuple(w.shape)).astype("float32") for w in weights]


@dataclass
class Estimate:
    eigenvalue: float
    vectors: list[np.ndarray]
    iterations: int


def norm_of(vectors) -> Any:
    """The Euclidean norm of a list of arrays, as one vector (TensorFlow tensors)."""
    import tensorflow as tf

    return tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(v)) for v in vectors]))


def _tf_power_iteration(model, loss_fn: Callable, preconditioned: bool):
    """A traced power iteration for `model`: (x, y, vectors, scales, iterations, tol) ->
    (eigenvalue, vectors, iterations used). With `preconditioned`, it iterates on
    S = D H D with D = P^-1/2, which has the eigenvalues of P^-1 H and is symmetric."""
    import tensorflow as tf

    weights = model.trainable_weights
    frozen = model.non_trainable_variables  # incl. dropout seed states
    # Called as it is, not rewritten by AutoGraph: a nested loss function given here was
    # once resolved to another function of the same name (a flaky TypeError in the suite).
    loss_fn = tf.autograph.experimental.do_not_convert(loss_fn)

    def dense(tensor, like):
        if tensor is None:
            return tf.zeros(like.shape, tf.float32)
        return tf.cast(tf.convert_to_tensor(tensor), tf.float32)  # embeddings: IndexedSlices

    def hessian_vector(x, y, vectors):
        params = [tf.convert_to_tensor(w.value) for w in weights]
        with tf.GradientTape() as outer:
            outer.watch(params)
            with tf.GradientTape() as inner:
                inner.watch(params)
                prediction, _ = model.stateless_call(params, [v.value for v in frozen], x,
                                                     training=True)
                loss = tf.cast(loss_fn(y, prediction), tf.float32)
            gradients = [dense(g, w) for g, w in
                         zip(inner.gradient(loss, params), weights, strict=True)]
            product = tf.add_n([tf.reduce_sum(g * v) for g, v in
                                zip(gradients, vectors, strict=True)])
        return [dense(h, w) for h, w in zip(outer.gradient(product, params), weights,
                                            strict=True)]

    def normalised(vectors):
        return [v / tf.maximum(norm_of(vectors), 1e-30) for v in vectors]

    def operator(x, y, vectors, scales, shift):
        if not preconditioned:
            products = hessian_vector(x, y, vectors)
        else:
            products = hessian_vector(x, y, [d * v for d, v in zip(scales, vectors, strict=True)])
            products = [d * h for d, h in zip(scales, products, strict=True)]
        return [h - shift * v for h, v in zip(products, vectors, strict=True)]

    @tf.function
    def power_iteration(x, y, vectors, scales, iterations, tolerance, shift):
        vectors = normalised(vectors)
        eigenvalue = tf.constant(0.0)
        magnitude = tf.constant(0.0)
        done = tf.constant(0)
        for index in tf.range(iterations):
            image = operator(x, y, vectors, scales, shift)
            estimate = tf.add_n([tf.reduce_sum(v * h) for v, h in
                                 zip(vectors, image, strict=True)])
            change = tf.abs(estimate - eigenvalue)
            eigenvalue = estimate
            magnitude = norm_of(image)
            vectors = normalised(image)
            done = index + 1
            # Relative to the eigenvalue of H, not of H - shift I: against the shifted one a
            # large shift makes slow progress look settled.
            if tf.logical_and(done >= MIN_ITERATIONS,
                              change <= tolerance * tf.abs(estimate + shift)):
                break
        return eigenvalue, vectors, done, magnitude

    return power_iteration


def _jax_power_iteration(model, loss_fn: Callable, preconditioned: bool):
    """The same on the JAX backend: Hessian-vector products as a jvp of the gradient of
    a stateless call."""
    import jax
    import jax.numpy as jnp

    def loss_of(trainable, non_trainable, x, y):
        prediction, _ = model.stateless_call(trainable, non_trainable, x, training=True)
        return jnp.asarray(loss_fn(y, prediction), jnp.float32)

    def run(trainable, non_trainable, x, y, vectors, scales, iterations, tolerance, shift):
        def operator(vectors):
            start = vectors
            if preconditioned:
                vectors = [d * v for d, v in zip(scales, vectors, strict=True)]
            image = hessian_vector_product(
                lambda params: loss_of(params, non_trainable, x, y), trainable, vectors)
            if preconditioned:
                image = [d * h for d, h in zip(scales, image, strict=True)]
            return [h - shift * v for h, v in zip(image, start, strict=True)]

        return power_iterate(operator, vectors, iterations, tolerance, shift)

    return jax.jit(run)


def hessian_vector_product(loss_of_params: Callable, params: list, vectors: list) -> list:
    """JAX: H v by forward-over-reverse differentiation (a jvp of the gradient)."""
    import jax

    return list(jax.jvp(jax.grad(loss_of_params), (list(params),), (list(vectors),))[1])


def power_iterate(operator: Callable, vectors: list, iterations, tolerance, shift=0.0):
    """JAX: power iteration of a symmetric linear `operator` on lists of arrays, as a
    while loop that stops after `iterations` or once the estimate settles. Returns the
    Rayleigh quotient, the vectors, the iterations used and |operator(v)|. `operator` is
    H - shift I; the estimate counts as settled relative to the eigenvalue of H."""
    import jax
    import jax.numpy as jnp

    def norm(vs):
        return jnp.sqrt(sum(jnp.sum(jnp.square(v)) for v in vs))

    def normalised(vs):
        return [v / jnp.maximum(norm(vs), 1e-30) for v in vs]

    def keep_going(state):
        _, _, done, change, estimate, _ = state
        settled = (done >= MIN_ITERATIONS) & (change <= tolerance * jnp.abs(estimate + shift))
        return (done < iterations) & ~settled

    def step(state):
        vs, _, done, _, previous, _ = state
        image = operator(vs)
        estimate = sum(jnp.sum(v * h) for v, h in zip(vs, image, strict=True))
        return (normalised(image), estimate, done + 1, jnp.abs(estimate - previous), estimate,
                norm(image))

    start = (normalised([jnp.asarray(v, jnp.float32) for v in vectors]), jnp.float32(0.0),
             jnp.int32(0), jnp.float32(jnp.inf), jnp.float32(0.0), jnp.float32(0.0))
    vs, estimate, done, _, _, magnitude = jax.lax.while_loop(keep_going, step, start)
    return estimate, vs, done, magnitude


class HessianProbe:
    """Top eigenvalue of the Hessian of `loss_fn(y, model(x))` on one batch, traced once
    per model and loss (kept on the model, so a new probe for the same model reuses it).

    Args:
        model: a built Keras model.
        loss_fn: the training loss, called as loss_fn(y_true, y_pred).
        iterations: the most power iterations per call.
        tolerance: stop once the estimate moves by less than this share of itself.
    """

    def __init__(self, model, loss_fn: Callable, *, iterations: int = DEFAULT_ITERATIONS,
                 tolerance: float = DEFAULT_TOLERANCE):
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1. Received: iterations={iterations}")
        self.model = model
        self.loss_fn = loss_fn
        self.iterations = iterations
        self.tolerance = tolerance
        self.vectors: list[np.ndarray] | None = None  # warm start for the next call

    def _function(self, preconditioned: bool):
        cache = getattr(self.model, PROBE_ATTRIBUTE, None)
        if cache is None or cache[0] is not self.loss_fn:
            cache = (self.loss_fn, {})
            setattr(self.model, PROBE_ATTRIBUTE, cache)
        functions = cache[1]
        if preconditioned not in functions:
            build = (_jax_power_iteration if keras.backend.backend() == "jax"
                     else _tf_power_iteration)
            functions[preconditioned] = build(self.model, self.loss_fn, preconditioned)
        return functions[preconditioned]

    def traced_function(self, preconditioned: bool = False):
        """The traced power iteration (tests read its tracing count)."""
        return self._function(preconditioned)

    def top_eigenvalue(self, x, y, preconditioner_diagonal: Sequence[np.ndarray] | None = None
                       ) -> Estimate:
        """The top eigenvalue of H, or of P^-1 H given P's diagonal (one array per weight)."""
        weights = self.model.trainable_weights
        if self.vectors is None:
            self.vectors = initial_vectors(weights)
        preconditioned = preconditioner_diagonal is not None
        scales = ([(1.0 / np.sqrt(p)).astype("float32") for p in preconditioner_diagonal]
                  if preconditioned else [])
        eigenvalue, vectors, done, magnitude = self._iterate(x, y, self.vectors, scales, 0.0)
        if eigenvalue < DOMINANCE_SHARE * magnitude:
            # A negative curvature dominated or shared the lead. The top eigenvalue is the
            # dominant one of H + |H v| I (all of whose eigenvalues are >= 0), shifted back.
            # After a negative lead the vector holds little of the top eigenvector: restart.
            start = initial_vectors(weights) if eigenvalue < 0 else vectors
            shifted, shifted_vectors, more, _ = self._iterate(x, y, start, scales, -magnitude)
            done += more
            # Both Rayleigh quotients are lower bounds on the top eigenvalue: keep the larger.
            if shifted - magnitude > eigenvalue:
                eigenvalue, vectors = shifted - magnitude, shifted_vectors
        self.vectors = vectors
        return Estimate(eigenvalue, vectors, done)

    def _iterate(self, x, y, vectors, scales, shift: float):
        function = self._function(bool(scales))
        if keras.backend.backend() == "jax":
            weights = self.model.trainable_weights
            eigenvalue, vectors, done, magnitude = function(
                [w.value for w in weights],
                [w.value for w in self.model.non_trainable_variables],
                x, y, vectors, scales, self.iterations, self.tolerance, shift)
        else:
            import tensorflow as tf

            eigenvalue, vectors, done, magnitude = function(
                x, y, [tf.constant(v) for v in vectors], [tf.constant(s) for s in scales],
                tf.constant(self.iterations), tf.constant(self.tolerance, tf.float32),
                tf.constant(shift, tf.float32))
        vectors = [np.asarray(keras.ops.convert_to_numpy(v)) for v in vectors]
        return float(eigenvalue), vectors, int(done), float(magnitude)


def measure(probe: HessianProbe, optimizer, batch: tuple[Any, Any]) -> dict[str, Any] | None:
    """One reading at the optimizer's current step: {"learning_rate", "sharpness",
    "threshold", "ratio", "preconditioned", "iterations"}; None for an adaptive optimizer
    that has not taken a step (no second moment to precondition with yet)."""
    from common.callbacks import current_learning_rate

    rule = stability_rule(optimizer)
    diagonal = None
    if rule.preconditioned:
        diagonal = preconditioner(optimizer, probe.model.trainable_weights)
        if diagonal is None:
            return None
    estimate = probe.top_eigenvalue(batch[0], batch[1], diagonal)
    learning_rate = current_learning_rate(optimizer)
    threshold = rule.threshold(learning_rate)
    ratio = estimate.eigenvalue / threshold if math.isfinite(threshold) else math.nan
    return {"learning_rate": learning_rate, "sharpness": estimate.eigenvalue,
            "threshold": threshold, "ratio": ratio, "preconditioned": rule.preconditioned,
            "rule": rule.label, "iterations": estimate.iterations}
