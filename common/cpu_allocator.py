"""TensorFlow's pooled CPU allocator, the default of every lr-suite process.

TensorFlow's default CPU allocator passes each tensor to malloc. glibc serves blocks
above its mmap threshold (32 MiB at most) with fresh mappings and unmaps them on free,
so a step whose activations are that large (the U-Net's 16 x 128 x 128 x 32 maps, the
translation logits) maps, faults in and zeroes them again on every step: on DRIVE that
was 1.4-1.7 CPU-seconds a step in the kernel. The BFC allocator keeps freed blocks
for reuse. `bench/cpu_allocator.py` measures both settings per domain.

It must be chosen before TensorFlow creates its allocator, so the entry points (the
CLI, the bench scripts, the test session) call `prefer_pooled_allocator` before they
import TensorFlow. A value the user already set wins: TF_CPU_ALLOCATOR_USE_BFC=false
restores TensorFlow's own default.
"""

from __future__ import annotations

import os

ALLOCATOR_ENV = "TF_CPU_ALLOCATOR_USE_BFC"


def prefer_pooled_allocator() -> None:
    """Ask TensorFlow for its BFC CPU allocator unless the environment says otherwise."""
    os.environ.setdefault(ALLOCATOR_ENV, "true")
