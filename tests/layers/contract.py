"""The checks every custom layer must pass, shared like Keras' own `run_layer_test`.

A layer test calls `run_layer_contract(cls, init_kwargs, input_shape, tmp_path)` once and then
tests only what is particular to its layer (a NumPy reference, its options, its errors).
Everything here uses `keras.ops` and model APIs only, so it runs on any Keras backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

to_numpy = keras.ops.convert_to_numpy


def run_layer_contract(
    layer_cls: type[keras.layers.Layer],
    init_kwargs: dict[str, Any],
    input_shape: tuple[int, ...],
    tmp_path: Path,
    *,
    model_input_shape: tuple[int | None, ...] | None = None,
    other_input_shapes: tuple[tuple[int, ...], ...] = (),
    bfloat16_tolerance: float = 0.05,
) -> None:
    """Config, shapes, `.keras` saving, compiled training and `mixed_bfloat16` for one layer.

    Args:
        layer_cls: The layer class.
        init_kwargs: Constructor arguments of the layer under test.
        input_shape: A concrete input shape `(batch, ...)`; the inputs are standard normal.
        tmp_path: Where the `.keras` file is written.
        model_input_shape: The `keras.Input` shape (without batch) of the model around the
            layer; may hold `None` where the layer accepts any size. Defaults to
            `input_shape[1:]`.
        other_input_shapes: More concrete input shapes (where `model_input_shape` has
            `None`) that the same compiled model must then train and predict on.
        bfloat16_tolerance: Absolute and relative tolerance of the `mixed_bfloat16` output
            against the float32 output of the same weights.
    """
    x = np.random.default_rng(0).normal(size=input_shape).astype("float32")
    check_config_round_trip(layer_cls(**init_kwargs))
    keras.utils.set_random_seed(0)
    model = model_around(layer_cls(**init_kwargs), model_input_shape or input_shape[1:])
    check_output_shapes(model.layers[1], x)
    check_keras_file_round_trip(model, x, tmp_path / f"{layer_cls.__name__}.keras")
    check_compiled_training_moves_the_weights(model, x)
    for seed, shape in enumerate(other_input_shapes, start=1):
        other = np.random.default_rng(seed).normal(size=shape).astype("float32")
        check_compiled_training_moves_the_weights(model, other)
    check_mixed_bfloat16(layer_cls, init_kwargs, x, bfloat16_tolerance)


def model_around(layer: keras.layers.Layer, input_shape: tuple[int | None, ...]) -> keras.Model:
    """`Input -> layer -> Flatten -> Dense(2)`: a head so that any output shape can be trained."""
    inputs = keras.Input(input_shape)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(layer(inputs)))
    return keras.Model(inputs, outputs)


def check_config_round_trip(layer: keras.layers.Layer) -> None:
    """`from_config(get_config())` rebuilds a layer with the very same config."""
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def check_output_shapes(layer: keras.layers.Layer, x: np.ndarray) -> None:
    """`compute_output_shape` agrees with the symbolic output and with an eager call."""
    symbolic_input = tuple(layer.input.shape)
    assert tuple(layer.output.shape) == tuple(layer.compute_output_shape(symbolic_input))
    assert tuple(layer(x).shape) == tuple(layer.compute_output_shape(x.shape))


def check_keras_file_round_trip(model: keras.Model, x: np.ndarray, path: Path) -> None:
    """A `.keras` file loads without `custom_objects` into the same layer and outputs."""
    model.save(path)
    loaded = keras.saving.load_model(path)
    original, restored = model.layers[1], loaded.layers[1]
    assert type(restored) is type(original)
    assert restored.get_config() == original.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def check_compiled_training_moves_the_weights(model: keras.Model, x: np.ndarray) -> None:
    """One `jit_compile=True` step changes every trainable weight of the layer and keeps the
    loss finite; the compiled `predict` then equals an eager call. A model with `None` sizes
    may be given inputs of several sizes, one call each."""
    layer = model.layers[1]
    before = [to_numpy(w) for w in layer.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=True)
    targets = np.random.default_rng(1).normal(size=(len(x), 2)).astype("float32")
    history = model.fit(x, targets, epochs=1, batch_size=len(x), verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [to_numpy(w) for w in layer.trainable_weights]
    for weight, old, new in zip(layer.trainable_weights, before, after, strict=True):
        assert not np.array_equal(old, new), f"training did not move {weight.path}"
    np.testing.assert_allclose(
        model.predict(x, verbose=0), to_numpy(model(x)), rtol=1e-4, atol=1e-5
    )


def check_mixed_bfloat16(
    layer_cls: type[keras.layers.Layer],
    init_kwargs: dict[str, Any],
    x: np.ndarray,
    tolerance: float,
) -> None:
    """Under `mixed_bfloat16` the layer keeps float32 weights, returns bfloat16, finite
    values, close to float32 with the same weights."""
    reference = layer_cls(**init_kwargs)
    layer = layer_cls(**init_kwargs, dtype="mixed_bfloat16")
    reference.build(x.shape)
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    assert all(w.dtype == "float32" for w in layer.weights)
    outputs = layer(x)
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    outputs = to_numpy(keras.ops.cast(outputs, "float32"))
    assert np.all(np.isfinite(outputs))
    np.testing.assert_allclose(outputs, to_numpy(reference(x)), rtol=tolerance, atol=tolerance)
