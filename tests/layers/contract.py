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
    inputs: int = 1,
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
        inputs: How many tensors the layer takes; above 1, a list of that many, each of
            `input_shape` (a merging layer such as a residual add).
    """
    x = _normal(input_shape, seed=0, inputs=inputs)
    check_config_round_trip(layer_cls(**init_kwargs))
    keras.utils.set_random_seed(0)
    model = model_around(layer_cls(**init_kwargs), model_input_shape or input_shape[1:], inputs)
    check_output_shapes(layer_under_test(model), x)
    check_keras_file_round_trip(model, x, tmp_path / f"{layer_cls.__name__}.keras")
    check_compiled_training_moves_the_weights(model, x)
    for seed, shape in enumerate(other_input_shapes, start=1):
        other = _normal(shape, seed=seed * inputs, inputs=inputs)
        check_compiled_training_moves_the_weights(model, other)
    check_mixed_bfloat16(layer_cls, init_kwargs, x, bfloat16_tolerance)


def _normal(shape: tuple[int, ...], seed: int, inputs: int = 1):
    """Standard normal float32 inputs: one array, or a list of `inputs` different ones."""
    arrays = [np.random.default_rng(seed + i).normal(size=shape).astype("float32")
              for i in range(inputs)]
    return arrays[0] if inputs == 1 else arrays


def _shapes(x) -> Any:
    return keras.tree.map_structure(lambda array: tuple(array.shape), x)


def model_around(
    layer: keras.layers.Layer, input_shape: tuple[int | None, ...], inputs: int = 1
) -> keras.Model:
    """`Input -> layer -> Flatten -> Dense(2)`: a head so that any output shape can be trained
    (`inputs` above 1: that many `Input`s, given to the layer as a list)."""
    sources = [keras.Input(input_shape) for _ in range(inputs)]
    merged = layer(sources[0] if inputs == 1 else sources)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(merged))
    return keras.Model(sources[0] if inputs == 1 else sources, outputs)


def layer_under_test(model: keras.Model) -> keras.layers.Layer:
    """The layer a `model_around` model was built around: the one before Flatten and Dense."""
    return model.layers[-3]


def check_config_round_trip(layer: keras.layers.Layer) -> None:
    """`from_config(get_config())` rebuilds a layer with the very same config."""
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def check_output_shapes(layer: keras.layers.Layer, x: np.ndarray | list) -> None:
    """`compute_output_shape` agrees with the symbolic output and with an eager call."""
    symbolic_input = _shapes(layer.input)
    assert tuple(layer.output.shape) == tuple(layer.compute_output_shape(symbolic_input))
    assert tuple(layer(x).shape) == tuple(layer.compute_output_shape(_shapes(x)))


def check_keras_file_round_trip(model: keras.Model, x: np.ndarray | list, path: Path) -> None:
    """A `.keras` file loads without `custom_objects` into the same layer and outputs."""
    model.save(path)
    loaded = keras.saving.load_model(path)
    original, restored = layer_under_test(model), layer_under_test(loaded)
    assert type(restored) is type(original)
    assert restored.get_config() == original.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def check_compiled_training_moves_the_weights(model: keras.Model, x: np.ndarray | list) -> None:
    """One `jit_compile=True` step changes every trainable weight of the layer and keeps the
    loss finite; the compiled `predict` then equals an eager call. A model with `None` sizes
    may be given inputs of several sizes, one call each."""
    layer = layer_under_test(model)
    before = [to_numpy(w) for w in layer.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=True)
    batch = len(keras.tree.flatten(x)[0])
    targets = np.random.default_rng(1).normal(size=(batch, 2)).astype("float32")
    history = model.fit(x, targets, epochs=1, batch_size=batch, verbose=0)
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
    x: np.ndarray | list,
    tolerance: float,
) -> None:
    """Under `mixed_bfloat16` the layer keeps float32 weights, returns bfloat16, finite
    values, close to float32 with the same weights."""
    reference = layer_cls(**init_kwargs)
    layer = layer_cls(**init_kwargs, dtype="mixed_bfloat16")
    reference.build(_shapes(x))
    layer.build(_shapes(x))
    layer.set_weights(reference.get_weights())
    assert all(w.dtype == "float32" for w in layer.weights)
    outputs = layer(x)
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    outputs = to_numpy(keras.ops.cast(outputs, "float32"))
    assert np.all(np.isfinite(outputs))
    np.testing.assert_allclose(outputs, to_numpy(reference(x)), rtol=tolerance, atol=tolerance)
