"""How close each domain's training comes to this machine's float32 matmul rate.

Three figures, then their ratio:
  - the machine's attainable rate: a large square float32 `tf.matmul` (2 n^3 FLOPs) on
    every core TensorFlow uses, warmed up, then the best and median of `--rounds`;
  - each domain's FLOPs per training step of its default model at a real batch, counted
    twice: TensorFlow's profiler (`tf.compat.v1.profiler`, float_operation) over the graph
    of the model's own `train_step` (forward, loss, backward, optimizer update), and an
    analytic count per layer (Dense, Conv, transposed Conv, attention: 2 FLOPs per
    multiply-add, recorded on an eager forward pass; training = 3 x forward: the input
    gradient and the weight gradient each cost about one forward pass);
  - steps/s of the compiled train step (`model.train_function`, what `fit` calls per
    step) on one batch held in memory, and of a bare `model.fit` on the domain's real
    input pipeline.
Achieved GFLOP/s = profiler GFLOP/step x steps/s; its fraction of the matmul rate is what
the table reports. The gap between the two steps/s columns is the input pipeline and
fit's per-step Python; the gap between the compiled step and the matmul rate is the
model's own kernels (small matmuls, elementwise and memory-bound ops, gathers).

The profiler has no FLOP count for `Einsum` (what Keras's attention and EinsumDense
emit), so this script registers one: 2 x the product of every index's size, the
multiply-adds of a contraction.

    python bench/compute_efficiency.py [--domains D ...] [--quick] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable

import bench_common as bc
import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import graph_util
from tensorflow.python.framework import ops as tf_ops

from common.seed import set_seed

# Op types that run as matrix products (dense kernels); everything else the profiler
# counts is elementwise, reductions or pooling.
MATMUL_OPS = frozenset({
    "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum", "Conv2D", "Conv3D",
    "Conv2DBackpropInput", "Conv2DBackpropFilter", "DepthwiseConv2dNative",
})
BATCH_MATMUL_OPS = frozenset({"BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"})
TRAINING_OVER_FORWARD = 3  # forward + input gradient + weight gradient


# ## The machine's rate


def matmul_rate(n: int, rounds: int, warmup: int = 2) -> tuple[float, float]:
    """Best and median GFLOP/s of an n x n float32 matmul."""
    a = tf.random.stateless_uniform((n, n), seed=(1, 2))
    b = tf.random.stateless_uniform((n, n), seed=(3, 4))
    product = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)[0, :1]))
    for _ in range(warmup):
        product(a, b).numpy()
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        product(a, b).numpy()  # the scalar waits for the whole product
        seconds.append(time.perf_counter() - started)
    flops = 2 * n**3
    return flops / min(seconds) / 1e9, flops / statistics.median(seconds) / 1e9


def thread_settings() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return (f"{cores} cores visible; intra-op threads {intra or f'0 (TF default: {cores})'}, "
            f"inter-op threads {inter or f'0 (TF default: {cores})'}")


# ## FLOPs: TensorFlow's profiler


def _einsum_flops(graph, node):
    """2 x the product of every distinct index's size (one multiply-add per term)."""
    equation = node.attr["equation"].s.decode()
    operands = equation.split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for spec, name in zip(operands, node.input, strict=False):
        shape = graph_util.tensor_shape_from_node_def_name(graph, name)
        shape.assert_is_fully_defined()
        dims = shape.as_list()
        letters = spec.replace("...", "")
        if "..." in spec:  # leading broadcast dims: name them so that they count once
            extra = len(dims) - len(letters)
            letters = "".join(chr(0x100 + i) for i in range(extra)) + letters
        for letter, size in zip(letters, dims, strict=True):
            sizes[letter] = max(sizes.get(letter, 1), size)
    return tf_ops.OpStats("flops", 2 * int(np.prod(list(sizes.values()), dtype=np.int64)))


def _register_einsum_flops() -> None:
    try:
        tf_ops.RegisterStatistics("Einsum", "flops")(_einsum_flops)
    except KeyError:  # registered already (a second import, or a TensorFlow that has it)
        pass


_register_einsum_flops()


def profiled_flops(graph) -> tuple[int, int]:
    """(all float ops, those of matmul and convolution ops) in a graph, by the profiler."""
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=graph, options=options)
    total, matmul = int(profile.total_float_ops), 0
    for node in profile.children:
        try:
            op = graph.get_operation_by_name(node.name)
        except (KeyError, ValueError):
            continue
        flops = node.total_float_ops
        if op.type in BATCH_MATMUL_OPS:
            corrected = batch_matmul_flops(op)
            total += corrected - flops
            flops = corrected
        if op.type in MATMUL_OPS:
            matmul += flops
    return total, matmul


def batch_matmul_flops(op) -> int:
    """2 x output elements x contracted size of a BatchMatMul. The profiler's own rule reads
    the attribute `transpose_a`, which these ops do not have (theirs is `adj_x`): it takes
    the wrong contracted size for every adjoint product, as in the weight gradient of a
    Dense layer on a sequence (x^T dy over each example, then summed)."""
    a_shape = op.inputs[0].shape.as_list()
    contracted = a_shape[-2] if op.get_attr("adj_x") else a_shape[-1]
    return 2 * int(np.prod(op.outputs[0].shape.as_list(), dtype=np.int64)) * contracted


def _specs(batch):
    return tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), batch)


def profiled_train_step(model, batch) -> tuple[int, int]:
    """Profiler FLOPs of one call of the compiled model's `train_step` on `batch`'s shapes."""
    concrete = tf.function(model.train_step).get_concrete_function(_specs(batch))
    return profiled_flops(concrete.graph)


def profiled_forward(model, inputs) -> int:
    concrete = tf.function(lambda x: model(x, training=True)).get_concrete_function(
        _specs(inputs))
    return profiled_flops(concrete.graph)[0]


# ## FLOPs: analytic, per layer


def _shape(tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.shape)


def layer_forward_flops(layer, args, kwargs, output) -> int:
    """Forward FLOPs of one call of a counted layer, from its real input and output shapes."""
    if isinstance(layer, keras.layers.MultiHeadAttention):
        query = _shape(args[0])
        value = _shape(args[1] if len(args) > 1 else kwargs["value"])
        key = value  # the suite's attention always passes key = value
        heads, key_dim = layer.num_heads, layer.key_dim
        value_dim = layer.value_dim or key_dim
        batch, targets, sources = query[0], int(np.prod(query[1:-1])), int(np.prod(value[1:-1]))
        out_dim = _shape(output)[-1]
        macs = (batch * targets * query[-1] * heads * key_dim      # query projection
                + batch * sources * key[-1] * heads * key_dim      # key projection
                + batch * sources * value[-1] * heads * value_dim  # value projection
                + batch * heads * targets * sources * key_dim      # scores
                + batch * heads * targets * sources * value_dim    # weighted values
                + batch * targets * heads * value_dim * out_dim)   # output projection
        return 2 * macs
    if isinstance(layer, keras.layers.Conv2DTranspose):
        # Every input pixel scatters a kh x kw x out patch: in-channel MACs for each.
        inputs = _shape(args[0])
        kernel_h, kernel_w = layer.kernel_size
        return 2 * int(np.prod(inputs)) * kernel_h * kernel_w * layer.filters
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
        in_channels = _shape(args[0])[-1]
        per_output = int(np.prod(layer.kernel_size)) * in_channels // layer.groups
        return 2 * int(np.prod(_shape(output))) * per_output
    if isinstance(layer, keras.layers.Dense):
        inputs = _shape(args[0])
        return 2 * int(np.prod(inputs)) * layer.units
    if isinstance(layer, keras.layers.Embedding):
        return 0  # a gather: no multiply-adds
    raise TypeError(f"no FLOP rule for {type(layer).__name__}")


COUNTED_LAYERS = (keras.layers.MultiHeadAttention, keras.layers.Conv1D, keras.layers.Conv2D,
                  keras.layers.Conv3D, keras.layers.Conv2DTranspose, keras.layers.Dense,
                  keras.layers.Embedding)


def _counted_layers(layer) -> list:
    """The layers with a FLOP rule under `layer`, not descending into them (attention's
    own projections are counted by its rule)."""
    found = []
    for child in layer._flatten_layers(include_self=False, recursive=False):
        found.extend([child] if isinstance(child, COUNTED_LAYERS) else _counted_layers(child))
    return found


def analytic_forward_flops(model, inputs) -> tuple[int, Counter]:
    """Forward FLOPs by layer rule, over one eager forward pass on `inputs` (real shapes:
    free spatial and sequence dims included); also the FLOPs by layer type."""
    by_type: Counter = Counter()
    originals = {}

    def recording(layer, call: Callable):
        def wrapped(*args, **kwargs):
            output = call(*args, **kwargs)
            by_type[type(layer).__name__] += layer_forward_flops(layer, args, kwargs, output)
            return output
        return wrapped

    layers = {id(layer): layer for layer in _counted_layers(model)}.values()
    for layer in layers:
        originals[layer] = layer.call
        object.__setattr__(layer, "call", recording(layer, layer.call))
    try:
        model(inputs, training=False)
    finally:
        for layer, call in originals.items():
            object.__delattr__(layer, "call")
            assert layer.call == call
    return sum(by_type.values()), by_type


# ## Steps per second


def compiled_steps_per_second(model, batch, steps: int, rounds: int) -> float:
    """Best steps/s of the compiled train function on one batch replayed from memory."""
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    model.make_train_function()
    bc.train_steps(model, iterator, 2)  # trace; not timed
    return max(bc.steps_per_second(lambda n: bc.train_steps(model, iterator, n), steps)
               for _ in range(rounds))


def fit_steps_per_second(model, train, steps: int, rounds: int) -> float:
    """Best steps/s of a bare `model.fit` on the real pipeline (its per-fit set-up and
    first-batch wait excluded: the difference of a 1-step and a 1+steps fit)."""
    model.fit(train, epochs=1, steps_per_epoch=3, verbose=0)  # trace for the pipeline's shapes
    rates = []
    for _ in range(rounds):
        times = []
        for count in (1, 1 + steps):
            started = time.perf_counter()
            model.fit(train, epochs=1, steps_per_epoch=count, verbose=0)
            times.append(time.perf_counter() - started)
        rates.append(steps / max(times[1] - times[0], 1e-9))
    return max(rates)


def representative_batch(train, looked_at: int):
    """Of the pipeline's first batches, the one of median size in elements (translation's
    batches are padded to their own length); the others have equal shapes."""
    batches = list(train.take(looked_at))
    sizes = [sum(int(np.prod(t.shape)) for t in tf.nest.flatten(b[0])) for b in batches]
    return batches[int(np.argsort(sizes)[len(sizes) // 2])]


def real_token_share(inputs) -> float | None:
    """Share of integer input positions that are not padding (id 0); None for images."""
    flat = [t for t in tf.nest.flatten(inputs) if t.dtype.is_integer]
    if not flat:
        return None
    return sum(float(tf.math.count_nonzero(t)) for t in flat) / sum(int(tf.size(t)) for t in flat)


def measure_domain(name: str, *, steps: int, rounds: int, peak: float) -> dict:
    domain = bc.get_domain(name)
    cfg = bc.bench_config(domain, bc.real_data(name), small=False)
    set_seed(cfg.seed)
    bundle = domain.load_data(cfg)
    model = bc.compiled_model(domain, cfg, bundle)
    batch = representative_batch(bundle.fresh_train(), looked_at=20)
    inputs = batch[0]

    profiler_total, profiler_matmul = profiled_train_step(model, batch)
    forward_profiled = profiled_forward(model, inputs)
    analytic_forward, by_type = analytic_forward_flops(model, inputs)
    analytic_training = TRAINING_OVER_FORWARD * analytic_forward

    compiled = compiled_steps_per_second(model, batch, steps, rounds)
    fitted = fit_steps_per_second(model, bundle.fresh_train(), steps, rounds)
    share = real_token_share(inputs)
    result = {
        "domain": name,
        "config": bc.config_label(cfg, False),
        "shapes": ", ".join(str(tuple(t.shape)) for t in tf.nest.flatten(inputs)),
        "profiler": profiler_total, "profiler_matmul": profiler_matmul,
        "forward_profiled": forward_profiled,
        "analytic": analytic_training, "analytic_forward": analytic_forward,
        "by_type": dict(by_type), "compiled": compiled, "fit": fitted,
        "real_tokens": share,
    }
    achieved = profiler_total * compiled / 1e9
    print(f"{name}: batch {result['shapes']}; profiler {profiler_total / 1e9:.2f} GFLOP/step "
          f"({profiler_matmul / profiler_total:.0%} in matmul/conv ops; forward "
          f"{forward_profiled / 1e9:.2f}), analytic {analytic_training / 1e9:.2f} "
          f"(forward {analytic_forward / 1e9:.2f}: "
          + ", ".join(f"{k} {v / 1e9:.2f}" for k, v in by_type.most_common() if v)
          + f"); compiled step {compiled:.2f} steps/s, fit {fitted:.2f} steps/s; achieved "
          f"{achieved:.1f} GFLOP/s = {achieved / peak:.1%} of the matmul rate"
          + (f"; real (non-padding) tokens {share:.0%}" if share is not None else ""),
          flush=True)
    return result


def table_row(result: dict, peak: float) -> list[object]:
    gflop = result["profiler"] / 1e9
    compiled_rate, fit_rate = gflop * result["compiled"], gflop * result["fit"]
    tokens = result["real_tokens"]
    return [
        result["domain"], f"{result['config']}; {result['shapes']}", f"{gflop:.2f}",
        f"{result['analytic'] / 1e9:.2f}", f"{result['profiler_matmul'] / result['profiler']:.0%}",
        f"{result['compiled']:.2f}", f"{result['fit']:.2f}",
        f"{compiled_rate:.1f} / {fit_rate:.1f}",
        f"**{compiled_rate / peak:.1%}** / {fit_rate / peak:.1%}",
        "-" if tokens is None else f"{tokens:.0%}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="*", default=[], metavar="DOMAIN",
                        help="domains to measure (default: all four)")
    parser.add_argument("--matmul-size", type=int, default=4096, help="side of the matmul")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; the best one counts")
    parser.add_argument("--quick", action="store_true",
                        help="2048 matmul, 3 steps, one round (the default models still)")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    args = parser.parse_args()
    if args.quick:
        args.matmul_size, args.steps, args.rounds = 2048, 3, 1
    names = bc.parse_domains(args.domains, None)
    best, middle = matmul_rate(args.matmul_size, rounds=max(3, 2 * args.rounds + 1))
    print(f"matmul {args.matmul_size}^2 float32: best {best:.1f} GFLOP/s, median {middle:.1f}; "
          f"{thread_settings()}", flush=True)
    results = [measure_domain(name, steps=args.steps, rounds=args.rounds, peak=best)
               for name in names]
    bc.emit_table(
        f"Training FLOP rate against the float32 matmul rate ({best:.1f} GFLOP/s)",
        ["domain", "config; input batch", "GFLOP/step (profiler)", "GFLOP/step (analytic)",
         "matmul/conv share", "steps/s (compiled step)", "steps/s (fit)",
         "achieved GFLOP/s (compiled / fit)", "fraction of matmul rate (compiled / fit)",
         "real tokens"],
        [table_row(result, best) for result in results],
        notes=f"Matmul rate: best of {max(3, 2 * args.rounds + 1)} {args.matmul_size}x"
        f"{args.matmul_size} float32 products (median {middle:.1f} GFLOP/s); {thread_settings()}. "
        "FLOPs per step: TensorFlow's profiler over the train_step graph (used for the "
        "fraction); analytic = 3 x forward per-layer multiply-adds x 2. Steps/s: best of "
        f"{args.rounds} round(s) of {args.steps} steps. Real tokens: share of integer "
        "input positions that are not padding.",
        markdown_path=args.markdown)


if __name__ == "__main__":
    main()
