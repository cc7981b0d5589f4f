"""The training twin of a model with frozen BatchNormalization: the same function, gradients
and trained weights, faster; the model's own graph is what is saved."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline.models.training_graph import faster_training, training_twin
from pipeline.training.precision import precision_policy


def _network() -> keras.Model:
    """Lite-like blocks: conv -> BN -> ReLU6, depthwise (stride 1 and 2) -> BN, a biased
    conv before a BN, a BN that cannot fold (after an activation), and a head."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, 2, padding="same", use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    for stride, name in ((1, "dw1"), (2, "dw2")):
        x = keras.layers.DepthwiseConv2D(5, stride, padding="same", use_bias=False, name=name)(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.Conv2D(12, 1, use_bias=True, name="biased")(x)
    x = keras.layers.BatchNormalization(name="biased_bn")(x)
    x = keras.layers.Conv2D(12, 1, activation="relu", name="activated")(x)
    x = keras.layers.BatchNormalization(name="unfoldable_bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", dtype="float32", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for variable in layer.weights:
                positive = variable.path.endswith(("gamma", "moving_variance"))
                variable.assign(rng.uniform(0.5, 2.0, variable.shape) if positive
                                else rng.normal(0.0, 0.3, variable.shape))
            layer.trainable = False  # fine-tuning's rule
    return model


def _batch(seed: int = 1):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (6, 16, 16, 3)).astype("float32"),
            rng.integers(0, 3, 6).astype("int32"))


def _gradients(graph: keras.Model, model: keras.Model, images, labels):
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(labels, graph(images, training=True))
    return loss, tape.gradient(loss, model.trainable_variables)


def test_the_twin_computes_the_same_outputs_and_gradients_of_the_same_variables():
    model = _network()
    twin = training_twin(model)
    names = {layer.name for layer in twin.layers}
    assert {"stem_bn", "dw1_bn", "dw2_bn", "biased_bn"}.isdisjoint(names)
    assert "unfoldable_bn" in names  # after an activation: kept
    images, labels = _batch()
    expected, model_grads = _gradients(model, model, images, labels)
    loss, twin_grads = _gradients(twin, model, images, labels)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert all(g is not None for g in twin_grads)  # the conv bias still trains
    for ours, theirs in zip(twin_grads, model_grads, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_nothing_to_fold_gives_no_twin():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="trains")(x)  # still trainable: no fixed map
    assert training_twin(keras.Model(inputs, x)) is None


def _fit(model: keras.Model, fast: bool) -> list[np.ndarray]:
    images, labels = _batch()
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    keras.utils.set_random_seed(3)
    if fast:
        with faster_training(model) as used:
            assert used
            model.fit(images, labels, epochs=3, batch_size=3, shuffle=False, verbose=0)
    else:
        model.fit(images, labels, epochs=3, batch_size=3, shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("precision", ["float32", "mixed"])
def test_fit_through_the_twin_trains_the_model_as_fit_without_it(precision, tmp_path):
    with precision_policy(precision):
        plain, fast = _network(), _network()
        fast.set_weights(plain.get_weights())
        expected = _fit(plain, fast=False)
        weights = _fit(fast, fast=True)
    tolerance = 1e-4 if precision == "float32" else 0.05  # bfloat16 rounding, three epochs
    for ours, theirs in zip(weights, expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=tolerance)
    # Afterwards the model is its own graph again: saved with every BatchNormalization, and
    # traced anew (its functions traced through the twin are dropped).
    assert "call" not in vars(fast)
    assert fast.train_function is None and fast.predict_function is None
    path = tmp_path / "model.keras"
    fast.save(path)
    loaded = keras.saving.load_model(path)
    assert "biased_bn" in {layer.name for layer in loaded.layers}
    images, _ = _batch(2)
    np.testing.assert_allclose(loaded.predict_on_batch(images), fast.predict_on_batch(images),
                               rtol=1e-6)
