"""Mixed precision for the length of a workflow: Keras' global dtype policy, then back.

``mixed`` computes in float16 on a GPU (where it is fast) and bfloat16 on a CPU (float16
has no fast CPU kernels and needs loss scaling); variables stay float32.

``auto`` is mixed where it measured faster without costing validation accuracy: on a GPU;
on a CPU with bfloat16 instructions (AVX512-BF16, AMX-BF16) for a workflow that trains the
conv base (``finetune``: whole-base fine-tuning of EfficientNet-Lite1 on Oxford 17 ran 1.3x
faster and validated 0.7 points higher). Everywhere else it is float32: bfloat16 features
validated 1.5 points lower there (the head's cost is small in either precision), and a CPU
without those instructions converts bfloat16 in software (the whole-base step measured
slower than float32 on one). docs/results.md has the measurements.
The output layer (``classifier.output_layer``) is float32 whatever the policy, so the loss
is computed in float32 too. The previous policy is restored afterwards, even on error.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import keras
import tensorflow as tf

NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def native_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bfloat16 instructions (its flags in ``cpuinfo``; False where that
    file cannot be read)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as file:
            flags = next((line for line in file if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in NATIVE_BFLOAT16_FLAGS)


def policy_name(precision: str, trains_base: bool = False) -> str:
    """The Keras dtype policy for ``precision`` on this machine; ``trains_base``: the
    workflow trains the conv base itself (what ``auto`` decides by)."""
    gpu = bool(tf.config.list_physical_devices("GPU"))
    if precision == "float32" or (precision == "auto" and not gpu
                                  and not (trains_base and native_bfloat16())):
        return "float32"
    return "mixed_float16" if gpu else "mixed_bfloat16"


@contextlib.contextmanager
def precision_policy(precision: str, trains_base: bool = False) -> Iterator[str]:
    """Set the global dtype policy for ``precision`` (see ``policy_name``); yields its name."""
    previous = keras.config.dtype_policy()
    name = policy_name(precision, trains_base)
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)
