"""SpatialPyramidPooling: the layer contract, its bins, a NumPy reference, variable sizes."""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import ceil, floor

import keras
import numpy as np
import pytest

from pipeline.layers import SpatialPyramidPooling, bin_edges
from tests.layers.contract import run_layer_contract, to_numpy
from tests.layers.gradients import layer_gradients


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


# The other shapes lie below and above the finest level: one compiled model serves them all.
@pytest.mark.parametrize(
    ("kwargs", "input_shape", "model_input_shape", "other_shapes"),
    [
        ({"levels": (1, 2, 4)}, (2, 7, 5, 3), (None, None, 3), [(4, 9, 7, 3), (3, 3, 2, 3)]),
        (
            {"levels": [3, 1], "pooling": "average", "data_format": "channels_first"},
            (2, 3, 6, 4),
            (3, None, None),
            [(3, 3, 2, 1)],
        ),
    ],
)
def test_layer_contract(kwargs, input_shape, model_input_shape, other_shapes, tmp_path):
    run_layer_contract(
        SpatialPyramidPooling,
        kwargs,
        input_shape,
        tmp_path,
        model_input_shape=model_input_shape,
        other_input_shapes=tuple(other_shapes),
    )


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
    """One compiled model for every size (a `None` size on TensorFlow, a trace per size on
    JAX), against plain loops."""
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, SpatialPyramidPooling(levels=(1, 2, 4, 6), pooling=pooling)(inputs))
    rng = np.random.default_rng(0)
    for height, width in [(1, 1), (1, 5), (2, 3), (3, 3), (4, 7), (5, 2), (9, 9), (13, 6)]:
        x = rng.normal(size=(2, height, width, 3)).astype("float32")
        expected = reference_spp(x, (1, 2, 4, 6), pooling)
        np.testing.assert_allclose(model.predict_on_batch(x), expected, rtol=1e-5, atol=1e-6)


def test_channels_first_gives_the_same_vector():
    x = np.random.default_rng(1).normal(size=(2, 5, 7, 3)).astype("float32")
    last = SpatialPyramidPooling(data_format="channels_last")(x)
    first = SpatialPyramidPooling(data_format="channels_first")(np.transpose(x, (0, 3, 1, 2)))
    np.testing.assert_allclose(to_numpy(first), to_numpy(last))


def test_output_length_does_not_depend_on_the_map_size():
    layer = SpatialPyramidPooling(levels=[1, 3], pooling="average")
    assert layer.pooling == "avg"
    assert layer.compute_output_shape((None, None, None, 5)) == (None, 5 * 10)
    assert layer.compute_output_shape((4, 50, 7, 5)) == (4, 5 * 10)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="only TensorFlow graphs have a size unknown while tracing; JAX and PyTorch trace "
    "concrete shapes, which take the NumPy mask path",
)
def test_one_tensorflow_graph_serves_every_size():
    import tensorflow as tf

    layer = SpatialPyramidPooling(levels=(1, 2, 3), pooling="avg")
    pooled = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 2))])
    rng = np.random.default_rng(5)
    for height, width in [(7, 4), (2, 9), (1, 1)]:
        x = rng.normal(size=(1, height, width, 2)).astype("float32")
        expected = reference_spp(x, (1, 2, 3), "avg")
        np.testing.assert_allclose(pooled(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert pooled.experimental_get_tracing_count() == 1  # one graph for the three sizes


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_mixed_precision_is_close_to_float32_and_does_not_overflow(policy, pooling):
    # Large values: a float16 sum over the 40x40 map would overflow (40 * 40 * 300 > 65504).
    x = (300.0 + np.random.default_rng(3).normal(size=(2, 40, 40, 3))).astype("float32")
    expected = reference_spp(x, (1, 2, 4), pooling)
    layer = SpatialPyramidPooling(pooling=pooling, dtype=keras.DTypePolicy(policy))
    outputs = layer(x)
    assert keras.backend.standardize_dtype(outputs.dtype) == policy.split("_")[1]
    outputs = to_numpy(keras.ops.cast(outputs, "float32"))
    assert np.all(np.isfinite(outputs))
    np.testing.assert_allclose(outputs, expected, rtol=1e-2)


def test_gradients_are_finite_and_reach_one_input_per_max_bin():
    x = np.random.default_rng(4).normal(size=(1, 3, 2, 1)).astype("float32")
    gradient, _ = layer_gradients(SpatialPyramidPooling(levels=(1, 2, 4)), x)
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
