"""NetVLAD: the layer contract, the formula against NumPy, k-means initialisation, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.layers import NetVLAD, init_netvlad_from_features, kmeans
from tests.layers.contract import run_layer_contract, to_numpy
from tests.layers.gradients import layer_gradients


def reference_netvlad(x, kernel, bias, centers, epsilon=1e-12) -> np.ndarray:
    """The NetVLAD formula with explicit residuals x_n - c_k, in float64; x is (B, N, D)."""
    x, kernel, bias, centers = (np.asarray(v, np.float64) for v in (x, kernel, bias, centers))
    clusters = len(centers)
    logits = x @ kernel + bias
    logits -= logits.max(-1, keepdims=True)
    assignment = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assignment = assignment[:, :, :clusters]  # ghost clusters dropped after the softmax
    out = []
    for b in range(len(x)):
        vlad = np.zeros_like(centers)
        for k in range(clusters):
            for n in range(x.shape[1]):
                vlad[k] += assignment[b, n, k] * (x[b, n] - centers[k])
        vlad /= np.sqrt((vlad**2).sum(1, keepdims=True) + epsilon)
        vlad = vlad.reshape(-1)
        out.append(vlad / np.sqrt((vlad**2).sum() + epsilon))
    return np.stack(out)


def _random_weights(layer: NetVLAD, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])


def _blobs(centres: np.ndarray, per_blob: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(centres)), per_blob)
    points = centres[labels] + spread * rng.normal(size=(len(labels), centres.shape[1]))
    return points.astype("float32"), labels


@pytest.mark.parametrize(
    ("kwargs", "input_shape", "model_input_shape", "other_shapes"),
    [
        (
            {"clusters": 3, "ghost_clusters": 1, "alpha": 0.5},
            (2, 3, 5, 4),
            (None, None, 4),
            [(4, 2, 3, 4)],
        ),
        ({"clusters": 4, "epsilon": 1e-6}, (3, 6, 5), (None, 5), [(2, 1, 5)]),
    ],
)
def test_layer_contract(kwargs, input_shape, model_input_shape, other_shapes, tmp_path):
    run_layer_contract(
        NetVLAD,
        kwargs,
        input_shape,
        tmp_path,
        model_input_shape=model_input_shape,
        other_input_shapes=tuple(other_shapes),
    )


@pytest.mark.parametrize("ghost_clusters", [0, 2])
def test_matches_numpy_reference_of_the_formula(ghost_clusters):
    x = np.random.default_rng(0).normal(size=(3, 7, 5)).astype("float32")
    layer = NetVLAD(clusters=4, ghost_clusters=ghost_clusters)
    layer.build(x.shape)
    _random_weights(layer, seed=1)
    outputs = to_numpy(layer(x))
    assert outputs.shape == (3, 4 * 5)
    expected = reference_netvlad(x, *layer.get_weights())
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(outputs, axis=1), 1.0, rtol=1e-5)


def test_feature_maps_are_sets_of_descriptors_in_either_data_format():
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 6)).astype("float32")
    last = NetVLAD(3, data_format="channels_last")
    last.build(x.shape)
    _random_weights(last, seed=3)
    first = NetVLAD(3, data_format="channels_first")
    first.build((2, 6, 3, 4))
    first.set_weights(last.get_weights())
    expected = reference_netvlad(x.reshape(2, 12, 6), *last.get_weights())
    np.testing.assert_allclose(to_numpy(last(x)), expected, rtol=1e-5, atol=1e-6)
    first_out = first(np.transpose(x, (0, 3, 1, 2)))
    np.testing.assert_allclose(to_numpy(first_out), expected, rtol=1e-5, atol=1e-6)
    assert first.compute_output_shape((None, 6, None, None)) == (None, 18)


def test_initial_weights_follow_the_paper_from_the_initial_centres():
    layer = NetVLAD(clusters=3, ghost_clusters=1, alpha=2.5)
    layer.build((None, None, 4))
    kernel, bias, centers = layer.get_weights()
    assert kernel.shape == (4, 4) and bias.shape == (4,) and centers.shape == (3, 4)
    np.testing.assert_allclose(kernel[:, :3], 2 * 2.5 * centers.T, rtol=1e-6)
    np.testing.assert_allclose(bias[:3], -2.5 * (centers**2).sum(1), rtol=1e-6)


def test_kmeans_recovers_well_separated_centres():
    true_centres = 10.0 * np.eye(5)[:4]
    points, labels = _blobs(true_centres, per_blob=50, spread=0.3, seed=4)
    centres, found = kmeans(points, 4, seed=0)
    # Same partition up to a relabelling, and centres at the blob means.
    mapping = {label: found[labels == label][0] for label in range(4)}
    assert len(set(mapping.values())) == 4
    assert all(np.all(found[labels == label] == mapping[label]) for label in range(4))
    for label, cluster in mapping.items():
        np.testing.assert_allclose(centres[cluster], points[labels == label].mean(0), atol=1e-4)


@pytest.mark.parametrize("ghost_clusters", [0, 1])
def test_init_from_features_sets_the_paper_weights_and_assigns_points_to_their_cluster(
    ghost_clusters,
):
    true_centres = 5.0 * np.eye(6)[: 4 + ghost_clusters]
    points, labels = _blobs(true_centres, per_blob=60, spread=0.2, seed=5)
    # Conv-feature-like input: (images, H, W, D), reshaped to descriptors by the helper.
    rng = np.random.default_rng(6)
    features = points[rng.permutation(len(points))].reshape(-1, 2, 3, 6)
    layer = NetVLAD(clusters=4, ghost_clusters=ghost_clusters)
    alpha = init_netvlad_from_features(layer, features, seed=0, max_samples=200)
    kernel, bias, centers = (w.astype(np.float64) for w in layer.get_weights())
    all_centres = kernel.T / (2 * alpha)
    np.testing.assert_allclose(all_centres[:4], centers, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, -alpha * (all_centres**2).sum(1), rtol=1e-5, atol=1e-5)
    # The soft assignment is softmax(-alpha * ||x - c||^2) and picks each point's own blob.
    logits = points @ kernel + bias
    distances = ((points[:, None, :] - all_centres[None]) ** 2).sum(-1)
    shift = logits + alpha * distances  # alpha * ||x||^2: the same for every cluster
    np.testing.assert_allclose(shift, shift[:, :1].repeat(shift.shape[1], 1), rtol=1e-4)
    assigned = logits.argmax(1)
    for label in range(len(true_centres)):
        assert len(set(assigned[labels == label])) == 1
        np.testing.assert_allclose(
            all_centres[assigned[labels == label][0]], true_centres[label], atol=0.1
        )
    # Default alpha: the nearest centre gets ~100 times the weight of the second on average.
    assert alpha == pytest.approx(np.log(100) / (2 * 25.0), rel=0.1)
    assert init_netvlad_from_features(layer, features, alpha=3.0) == 3.0
    bias, centers = to_numpy(layer.bias), to_numpy(layer.centers)
    np.testing.assert_allclose(bias[:4], -3.0 * (centers**2).sum(1), rtol=1e-5)


def test_gradients_reach_every_weight_including_ghost_columns():
    layer = NetVLAD(clusters=3, ghost_clusters=1, alpha=0.5)
    x = np.random.default_rng(8).normal(size=(2, 3, 5, 4)).astype("float32")
    weights = keras.ops.arange(12, dtype="float32")
    grad_x, grads = layer_gradients(layer, x, lambda y: keras.ops.sum(y * weights))
    assert [g.shape for g in grads] == [(4, 4), (4,), (3, 4)]
    assert all(np.all(np.isfinite(g)) for g in [grad_x, *grads])
    assert all(np.any(g != 0) for g in grads)
    assert np.any(grads[0][:, 3] != 0) and grads[1][3] != 0  # the ghost cluster's column


def test_gradients_stay_finite_for_zero_residuals():
    layer = NetVLAD(clusters=2)
    layer.build((None, 3, 2))
    layer.set_weights([np.zeros((2, 2)), np.zeros(2), np.zeros((2, 2))])
    grad_x, grads = layer_gradients(layer, np.zeros((1, 3, 2), "float32"))
    assert all(np.all(np.isfinite(g)) for g in [grad_x, *grads])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_computes_in_float32_and_does_not_overflow(policy):
    compute_dtype = policy.split("_")[1]
    reference = NetVLAD(clusters=3, ghost_clusters=1)
    layer = NetVLAD(clusters=3, ghost_clusters=1, dtype=keras.DTypePolicy(policy))
    # 1024 descriptors of size ~1000: sums over N and squared norms overflow float16.
    x = (1000.0 * np.random.default_rng(9).normal(size=(2, 32, 32, 4))).astype("float32")
    reference.build(x.shape)
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    outputs = layer(x)
    assert keras.backend.standardize_dtype(outputs.dtype) == compute_dtype
    outputs = to_numpy(keras.ops.cast(outputs, "float32"))
    assert np.all(np.isfinite(outputs))
    # Only the input's rounding to the compute dtype differs from float32.
    rounded = to_numpy(keras.ops.cast(keras.ops.cast(x, compute_dtype), "float32"))
    tolerance = 1e-3 if compute_dtype == "float16" else 1e-2
    np.testing.assert_allclose(outputs, to_numpy(reference(rounded)), atol=tolerance)
    # And on ordinary inputs the output is close to float32's.
    x = np.random.default_rng(10).normal(size=(2, 5, 5, 4)).astype("float32")
    mixed = to_numpy(keras.ops.cast(layer(x), "float32"))
    np.testing.assert_allclose(mixed, to_numpy(reference(x)), atol=3 * tolerance)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"clusters": 0}, "clusters"),
        ({"clusters": 2.0}, "clusters"),
        ({"clusters": 2, "ghost_clusters": -1}, "ghost_clusters"),
        ({"clusters": 2, "alpha": 0.0}, "alpha"),
        ({"clusters": 2, "alpha": float("inf")}, "alpha"),
        ({"clusters": 2, "epsilon": -1e-9}, "epsilon"),
        ({"clusters": 2, "data_format": "NHWC"}, "data_format"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NetVLAD(**kwargs)


def test_impossible_shapes_and_bad_features_raise():
    with pytest.raises(ValueError, match="descriptor dimension"):
        NetVLAD(2)(keras.Input((None, None)))
    with pytest.raises(ValueError, match="3D"):
        NetVLAD(2).build((None, 4))
    layer = NetVLAD(3, ghost_clusters=1)
    layer.build((None, None, 4))
    with pytest.raises(ValueError, match="D=5"):
        init_netvlad_from_features(layer, np.zeros((10, 5)))
    with pytest.raises(ValueError, match=r"at least `clusters` \+ `ghost_clusters`"):
        init_netvlad_from_features(layer, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        init_netvlad_from_features(layer, np.full((10, 4), np.nan))
    with pytest.raises(ValueError, match="NetVLAD"):
        init_netvlad_from_features(keras.layers.Dense(2), np.zeros((10, 4)))
