"""Gradients on whichever Keras backend runs the tests: tf.GradientTape, jax.grad or autograd."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np


def gradients(loss: Callable, *args) -> list[np.ndarray]:
    """The gradients of the scalar `loss(*args)` with respect to each argument, as NumPy."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.convert_to_tensor(a) for a in args]
        with tf.GradientTape() as tape:
            for tensor in tensors:
                tape.watch(tensor)
            value = loss(*tensors)
        grads = tape.gradient(value, tensors)
    elif backend == "jax":
        import jax

        # Jitted, as `fit` runs it: one compilation instead of one per eager op.
        grads = jax.jit(jax.grad(loss, argnums=tuple(range(len(args)))))(*args)
    elif backend == "torch":
        tensors = [keras.ops.convert_to_tensor(a).detach().requires_grad_(True) for a in args]
        loss(*tensors).backward()
        grads = [tensor.grad for tensor in tensors]
    else:
        raise NotImplementedError(f"no gradient helper for the {backend!r} backend")
    return [keras.ops.convert_to_numpy(g) for g in grads]


def layer_gradients(
    layer: keras.layers.Layer, x: np.ndarray, reduce: Callable = keras.ops.sum
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Gradients of `reduce(layer(x))` for the input and for each trainable weight.

    Uses `stateless_call`, so the weights are plain arguments on every backend.
    """
    if not layer.built:
        layer.build(x.shape)
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss(inputs, *trainable):
        outputs, _ = layer.stateless_call(list(trainable), non_trainable, inputs)
        return reduce(outputs)

    trainable = [keras.ops.convert_to_numpy(v) for v in layer.trainable_variables]
    grad_x, *grad_weights = gradients(loss, np.asarray(x, "float32"), *trainable)
    return grad_x, grad_weights
