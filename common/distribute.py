"""Turns `--strategy` and `--cpu-devices` into the tf.distribute strategy a run uses.

- `default`: no strategy (TensorFlow's default strategy, one device), as before.
- `mirrored`: `tf.distribute.MirroredStrategy` over every GPU; without a GPU, over every
  logical CPU device (`--cpu-devices N` makes N of them, to try it without GPUs).
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`; the cluster and this
  process's place in it come from the `TF_CONFIG` environment variable (unset: one
  local worker).

`--batch-size` stays the global batch: each replica gets `batch_size / replicas`.

Splitting the CPU and configuring multi-worker collectives both have to happen before
TensorFlow initialises its runtime (the first op or tf.data pipeline). The CLI calls
`prepare_devices` right after parsing; `strategy_for` calls it again (a no-op then), and
raises `UserError` if the process has already started TensorFlow with other devices.
"""

from __future__ import annotations

import json
import os

import keras

from common.errors import UserError

_strategies: dict[str, object] = {}  # one per process: they own devices and collectives


def prepare_devices(count: int) -> None:
    """Split the CPU into `count` logical devices (nothing to do for 1)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu)  # None: never split
    if (len(configured) if configured else 1) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        raise UserError(
            f"--cpu-devices {count}: TensorFlow already started in this process with "
            f"{have} CPU device(s), and the CPU can only be split before it starts; "
            "use the lrsuite command, or call common.distribute.prepare_devices(N) before any "
            "TensorFlow work."
        ) from None


def strategy_for(cfg):
    """The strategy for `cfg` (the same object for every run of this process)."""
    import tensorflow as tf

    if cfg.strategy == "default":
        return tf.distribute.get_strategy()
    backend = keras.backend.backend()
    if backend != "tensorflow":  # tf.distribute cannot place JAX or torch variables
        raise UserError(f"--strategy {cfg.strategy} needs KERAS_BACKEND=tensorflow "
                        f"(it is {backend}); use --strategy default.")
    prepare_devices(cfg.cpu_devices)
    if cfg.strategy not in _strategies:
        _strategies[cfg.strategy] = _build(cfg.strategy)
    return _strategies[cfg.strategy]


def _build(name: str):
    import tensorflow as tf

    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    try:
        json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError as error:
        raise UserError(f"TF_CONFIG is not valid JSON ({error}); see README "
                        "'Distributed training and other backends'.") from None
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"--strategy multi_worker: {first_line}. Check TF_CONFIG, and start the strategy "
            "in a fresh process (lrsuite train ... --strategy multi_worker)."
        ) from None
