"""Mixed precision for the length of a workflow: Keras' global dtype policy, then back.

``mixed`` computes in float16 on a GPU (where it is fast) and bfloat16 on a CPU (float16
has no fast CPU kernels and needs loss scaling); variables stay float32. The output layer
(``classifier.output_layer``) is float32 whatever the policy, so the loss is computed in
float32 too. The previous policy is restored afterwards, even on error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import tensorflow as tf


def policy_name(precision: str) -> str:
    """The Keras dtype policy for ``precision`` on this machine."""
    if precision == "float32":
        return "float32"
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def precision_policy(precision: str) -> Iterator[str]:
    """Set the global dtype policy for ``precision``; yields the policy's name."""
    previous = keras.config.dtype_policy()
    name = policy_name(precision)
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)
