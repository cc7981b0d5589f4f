"""BatchNormalization folded into convolutions: the same outputs, fewer layers, nothing else."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.models.folding import folded_for_inference


def _randomise_norms(model: keras.Model, seed: int = 0) -> None:
    """Moving statistics and affine terms far from their initial values."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        for variable in layer.weights:
            positive = variable.path.endswith(("gamma", "moving_variance"))
            variable.assign(rng.uniform(0.5, 2.0, variable.shape) if positive
                            else rng.normal(0.0, 0.3, variable.shape))


def _network() -> keras.Model:
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="plain")(inputs)
    x = keras.layers.BatchNormalization(name="plain_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, 2, padding="same", depth_multiplier=2,
                                     use_bias=False, name="depthwise")(x)
    x = keras.layers.BatchNormalization(name="depthwise_bn", epsilon=1e-3)(x)
    x = keras.layers.Conv2D(16, 1, use_bias=True, name="biased")(x)
    x = keras.layers.BatchNormalization(scale=False, center=False, name="bare_bn")(x)
    branch = keras.layers.Conv2D(16, 1, name="shared")(x)  # also feeds the add: kept
    y = keras.layers.BatchNormalization(name="shared_bn")(branch)
    x = keras.layers.Add()([y, branch])
    x = keras.layers.Conv2D(16, 1, activation="relu", name="activated")(x)  # BN after ReLU
    x = keras.layers.BatchNormalization(name="after_relu_bn")(x)
    return keras.Model(inputs, x)


def _norms(model: keras.Model) -> set[str]:
    return {layer.name for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)}


def test_folding_keeps_the_outputs_and_drops_only_the_foldable_norms():
    keras.utils.set_random_seed(0)
    model = _network()
    _randomise_norms(model)
    assert np.abs(np.asarray(model.get_layer("plain_bn").moving_mean)).min() > 0
    folded = folded_for_inference(model)
    assert _norms(folded) == {"shared_bn", "after_relu_bn"}
    images = np.random.default_rng(1).normal(size=(4, 12, 12, 3)).astype("float32")
    expected = model.predict_on_batch(images)
    np.testing.assert_allclose(folded.predict_on_batch(images), expected, rtol=1e-4, atol=1e-4)
    assert _norms(model) == {"plain_bn", "depthwise_bn", "bare_bn", "shared_bn",
                             "after_relu_bn"}  # the original is untouched
    np.testing.assert_array_equal(model.predict_on_batch(images), expected)


def test_folding_under_mixed_precision_keeps_the_policy():
    keras.utils.set_random_seed(0)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = _network()
        _randomise_norms(model)
        folded = folded_for_inference(model)
    finally:
        keras.config.set_dtype_policy(previous)
    assert folded.get_layer("plain").dtype_policy.name == "mixed_bfloat16"
    images = np.random.default_rng(2).normal(size=(4, 12, 12, 3)).astype("float32")
    expected = np.asarray(model.predict_on_batch(images), "float32")
    got = np.asarray(folded.predict_on_batch(images), "float32")
    assert np.abs(got - expected).mean() < 0.05 * np.abs(expected).mean()


def test_a_model_without_norms_or_not_functional_is_returned_as_is():
    plain = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1),
                              keras.layers.BatchNormalization()])
    assert folded_for_inference(plain) is plain
    inputs = keras.Input((4, 4, 3))
    no_norms = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    assert folded_for_inference(no_norms) is no_norms


@pytest.mark.parametrize("variant", ["lite0"])
def test_efficientnet_lite_folds_every_norm(variant):
    from pipeline.models.efficientnet_lite import efficientnet_lite

    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 64, 3))
    model = efficientnet_lite(variant, inputs)
    _randomise_norms(model)
    folded = folded_for_inference(model)
    assert _norms(folded) == set()
    images = np.random.default_rng(3).normal(size=(2, 64, 64, 3)).astype("float32")
    expected = model.predict_on_batch(images)
    np.testing.assert_allclose(folded.predict_on_batch(images), expected,
                               rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_a_model_is_folded_once_and_follows_its_weights():
    keras.utils.set_random_seed(0)
    model = _network()
    folded = folded_for_inference(model)
    assert folded_for_inference(model) is folded  # one copy: traced once for every split
    _randomise_norms(model, seed=5)  # the source trained since: the copy follows
    images = np.random.default_rng(4).normal(size=(2, 12, 12, 3)).astype("float32")
    np.testing.assert_allclose(folded_for_inference(model).predict_on_batch(images),
                               model.predict_on_batch(images), rtol=1e-4, atol=1e-4)
