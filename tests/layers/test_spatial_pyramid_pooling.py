"""SpatialPyramidPooling: bins, NumPy reference, variable sizes, saving, precision, errors."""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import ceil, floor

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline.layers import SpatialPyramidPooling, bin_edges


def reference_edges(a: int, n: int) -> list[tuple[int, int]]:
    """floor(i*a/n) .. ceil((i+1)*a/n), with exact fractions (independent of the layer's code)."""
    return [(floor(Fraction(i * a, n)), ceil(Fraction((i + 1) * a, n))) for i in range(n)]


def reference_spp(x: np.ndarray, levels, pooling: str) -> np.ndarray:
    """Plain loops over levels, bins and channels; channels-last input."""
    _, height, width, _ = x.shape
    reduce = np.max if pooling == "max" else np.mean
    parts = []
    for n in levels:
        for r0, r1 in reference_edges(height, n):
            for c0, c1 in reference_edges(width, n):
                parts.append(reduce(x[:, r0:r1, c0:c1, :], axis=(1, 2)))
    return np.concatenate(parts, axis=-1)


def paper_bin_count(a: int, n: int) -> int:
    """Bins produced by the SPP-net rule: window ceil(a/n), stride floor(a/n), no padding."""
    window, stride = ceil(a / n), floor(a / n)
    return (a - window) // stride + 1


def test_paper_rule_gives_the_wrong_bin_count_and_these_edges_do_not():
    assert paper_bin_count(9, 6) == 8  # the paper's window/stride rule: 8 bins, not 6
    edges = bin_edges(9, 6)
    assert edges == reference_edges(9, 6) == [(0, 2), (1, 3), (3, 5), (4, 6), (6, 8), (7, 9)]
    layer = SpatialPyramidPooling(levels=(6,))
    assert layer(np.zeros((1, 9, 9, 2), "float32")).shape == (1, 6 * 6 * 2)


@pytest.mark.parametrize("a", [1, 2, 3, 5, 7, 9, 13])
@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_bins_cover_every_row_and_none_is_empty(a, n):
    edges = bin_edges(a, n)
    assert len(edges) == n
    assert all(end > start for start, end in edges)
    assert edges[0][0] == 0 and edges[-1][1] == a
    assert all(nxt[0] <= prev[1] for prev, nxt in itertools.pairwise(edges))


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_matches_numpy_reference_on_many_sizes(pooling):
    rng = np.random.default_rng(0)
    layer = SpatialPyramidPooling(levels=(1, 2, 4, 6), pooling=pooling)
    for height, width in [(1, 1), (1, 5), (2, 3), (3, 3), (4, 7), (5, 2), (9, 9), (13, 6)]:
        x = rng.normal(size=(2, height, width, 3)).astype("float32")
        expected = reference_spp(x, (1, 2, 4, 6), pooling)
        np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-6)


def test_channels_first_gives_the_same_vector():
    x = np.random.default_rng(1).normal(size=(2, 5, 7, 3)).astype("float32")
    last = SpatialPyramidPooling(data_format="channels_last")(x)
    first = SpatialPyramidPooling(data_format="channels_first")(np.transpose(x, (0, 3, 1, 2)))
    np.testing.assert_allclose(np.asarray(first), np.asarray(last))


def test_output_length_and_config():
    layer = SpatialPyramidPooling(levels=[1, 3], pooling="average")
    assert layer.compute_output_shape((None, None, None, 5)) == (None, 5 * 10)
    config = layer.get_config()
    assert config["levels"] == [1, 3] and config["pooling"] == "avg"
    clone = SpatialPyramidPooling.from_config(config)
    assert (clone.levels, clone.pooling, clone.data_format) == (
        layer.levels,
        layer.pooling,
        layer.data_format,
    )


def _variable_size_model(pooling: str = "max") -> keras.Model:
    inputs = keras.Input((None, None, 3))
    features = SpatialPyramidPooling(levels=(1, 2, 4), pooling=pooling)(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(features))


def test_none_spatial_dims_train_and_predict_on_two_sizes_with_jit():
    keras.utils.set_random_seed(0)
    model = _variable_size_model()
    assert model.layers[1].output.shape == (None, 21 * 3)
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    rng = np.random.default_rng(0)
    for size in [(9, 7), (3, 2)]:
        x = rng.normal(size=(4, *size, 3)).astype("float32")
        history = model.fit(x, np.zeros((4, 2)), epochs=1, batch_size=4, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert model.predict(x, verbose=0).shape == (4, 2)
    spp = keras.Model(model.inputs, model.layers[1].output)
    x = rng.normal(size=(2, 5, 11, 3)).astype("float32")
    np.testing.assert_allclose(spp.predict(x, verbose=0), reference_spp(x, (1, 2, 4), "max"))


def test_keras_file_round_trip_without_custom_objects(tmp_path):
    model = _variable_size_model(pooling="avg")
    x = np.random.default_rng(2).normal(size=(2, 6, 5, 3)).astype("float32")
    path = tmp_path / "spp.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[1], SpatialPyramidPooling)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_mixed_precision_is_close_to_float32_and_does_not_overflow(policy, pooling):
    # Large values: a float16 sum over the 40x40 map would overflow (40 * 40 * 300 > 65504).
    x = (300.0 + np.random.default_rng(3).normal(size=(2, 40, 40, 3))).astype("float32")
    expected = reference_spp(x, (1, 2, 4), pooling)
    layer = SpatialPyramidPooling(pooling=pooling, dtype=keras.DTypePolicy(policy))
    outputs = layer(x)
    assert keras.backend.standardize_dtype(outputs.dtype) == policy.split("_")[1]
    outputs = np.asarray(keras.ops.cast(outputs, "float32"))
    assert np.all(np.isfinite(outputs))
    np.testing.assert_allclose(outputs, expected, rtol=1e-2)


def test_gradients_are_finite_and_reach_one_input_per_max_bin():
    x = tf.constant(np.random.default_rng(4).normal(size=(1, 3, 2, 1)), "float32")
    layer = SpatialPyramidPooling(levels=(1, 2, 4))
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(layer(x))
    gradient = tape.gradient(total, x).numpy()
    assert np.all(np.isfinite(gradient))
    assert gradient.sum() == pytest.approx(21.0)  # each of the 21 bins passes 1 to its argmax


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": ()}, "levels"),
        ({"levels": (1, 0)}, "levels"),
        ({"levels": 4}, "levels"),
        ({"levels": (1.5,)}, "levels"),
        ({"pooling": "min"}, "pooling"),
        ({"data_format": "NHWC"}, "data_format"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpatialPyramidPooling(**kwargs)


def test_impossible_shapes_raise():
    with pytest.raises(ValueError, match="channel dimension"):
        SpatialPyramidPooling()(keras.Input((None, None, None)))
    with pytest.raises(ValueError, match="non-empty"):
        SpatialPyramidPooling().build((None, 0, 4, 3))
    with pytest.raises(ValueError, match="expected ndim=4"):
        SpatialPyramidPooling()(keras.Input((8, 3)))
