"""LocallyConnected2D: the layer contract, equal to Keras 2's layer and to Conv2D, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.layers import LocallyConnected2D, load_keras2_weights
from tests.layers.contract import run_layer_contract, to_numpy
from tests.layers.gradients import layer_gradients

KERAS2_SKIP = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="Keras 2 layers come from tf-keras, which runs on TensorFlow: their weights are "
    "imported in the TensorFlow run",
)


def _inputs(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _keras2_layer(tf_keras, x, **kwargs):
    """A built tf_keras LocallyConnected2D with random (non-zero) bias, and its output on x."""
    layer = tf_keras.layers.LocallyConnected2D(bias_initializer="random_normal", **kwargs)
    return layer, layer(x).numpy()


@KERAS2_SKIP
@pytest.mark.parametrize(
    ("kernel_size", "strides", "shape"),
    [(3, 1, (2, 6, 5, 4)), ((2, 3), (2, 1), (2, 7, 6, 3)), (1, 1, (1, 3, 3, 2))],
)
def test_equals_keras2_implementation_1_valid_padding(kernel_size, strides, shape):
    tf_keras = pytest.importorskip("tf_keras", reason="Keras 2 layers come from tf-keras")
    x = _inputs(shape)
    keras2, expected = _keras2_layer(
        tf_keras, x, filters=5, kernel_size=kernel_size, strides=strides, implementation=1
    )
    layer = LocallyConnected2D(5, kernel_size, strides=strides)
    layer.build(shape)
    load_keras2_weights(layer, keras2)
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-5)
    # The plain get_weights() list of implementation 1 is the same layout.
    other = LocallyConnected2D(5, kernel_size, strides=strides)
    other.build(shape)
    load_keras2_weights(other, keras2.get_weights())
    np.testing.assert_array_equal(to_numpy(other(x)), to_numpy(layer(x)))


@KERAS2_SKIP
@pytest.mark.parametrize(
    ("implementation", "padding", "data_format"),
    [
        (2, "valid", "channels_last"),
        (3, "valid", "channels_last"),
        (1, "valid", "channels_first"),
        (2, "same", "channels_last"),
        (3, "same", "channels_first"),
    ],
)
def test_imports_other_keras2_implementations_and_layouts(implementation, padding, data_format):
    tf_keras = pytest.importorskip("tf_keras", reason="Keras 2 layers come from tf-keras")
    shape = (2, 5, 6, 3) if data_format == "channels_last" else (2, 3, 5, 6)
    x = _inputs(shape, seed=1)
    keras2, expected = _keras2_layer(
        tf_keras,
        x,
        filters=4,
        kernel_size=3,
        padding=padding,
        data_format=data_format,
        implementation=implementation,
    )
    layer = LocallyConnected2D(4, 3, padding=padding, data_format=data_format)
    layer.build(shape)
    load_keras2_weights(layer, keras2)
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-5)


@KERAS2_SKIP
def test_keras2_same_windows_that_do_not_fit_are_refused():
    tf_keras = pytest.importorskip("tf_keras", reason="Keras 2 layers come from tf-keras")
    x = _inputs((1, 5, 5, 2))
    # Keras 2 centres an even kernel at stride * o; Conv2D's "same" pads after instead.
    keras2, _ = _keras2_layer(
        tf_keras, x, filters=2, kernel_size=2, strides=2, padding="same", implementation=2
    )
    layer = LocallyConnected2D(2, 2, strides=2, padding="same")
    layer.build(x.shape)
    with pytest.raises(ValueError, match="outside this layer's windows"):
        load_keras2_weights(layer, keras2)


@pytest.mark.parametrize(
    ("kernel_size", "strides", "padding", "shape"),
    [
        (3, 1, "same", (2, 5, 6, 3)),
        (2, 2, "same", (2, 5, 5, 3)),
        ((3, 2), (2, 3), "same", (1, 6, 7, 2)),
        (3, 2, "valid", (2, 7, 8, 3)),
    ],
)
def test_equals_conv2d_when_every_position_has_the_same_kernel(
    kernel_size, strides, padding, shape
):
    """With one kernel tiled over all positions, the layer is Conv2D (padding placed alike)."""
    x = _inputs(shape, seed=2)
    conv = keras.layers.Conv2D(4, kernel_size, strides=strides, padding=padding)
    expected = to_numpy(conv(x))
    layer = LocallyConnected2D(4, kernel_size, strides=strides, padding=padding)
    assert layer.compute_output_shape(shape) == expected.shape
    layer.build(shape)
    positions = layer.output_rows * layer.output_cols
    kernel, bias = conv.get_weights()  # (kh, kw, C, F), (F,)
    layer.set_weights(
        [
            np.broadcast_to(kernel.reshape(1, -1, 4), (positions, kernel[..., 0].size, 4)),
            np.broadcast_to(bias, (layer.output_rows, layer.output_cols, 4)),
        ]
    )
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-5)


def test_positions_really_have_their_own_weights():
    layer = LocallyConnected2D(1, 1, use_bias=False, kernel_initializer="ones")
    x = np.ones((1, 2, 2, 1), "float32")
    layer.build(x.shape)
    layer.set_weights([np.arange(4, dtype="float32").reshape(4, 1, 1)])
    np.testing.assert_array_equal(to_numpy(layer(x))[0, :, :, 0], [[0, 1], [2, 3]])


@pytest.mark.parametrize(
    ("kwargs", "input_shape"),
    [
        (
            {
                "filters": 4,
                "kernel_size": 3,
                "activation": "relu",
                "kernel_regularizer": keras.regularizers.L2(1e-4),
                "bias_constraint": keras.constraints.MaxNorm(2.0),
            },
            (2, 6, 6, 3),
        ),
        (
            {
                "filters": 3,
                "kernel_size": (2, 3),
                "strides": 2,
                "padding": "SAME",
                "data_format": "channels_first",
                "use_bias": False,
            },
            (2, 3, 5, 7),
        ),
    ],
)
def test_layer_contract(kwargs, input_shape, tmp_path):
    run_layer_contract(LocallyConnected2D, kwargs, input_shape, tmp_path)


def test_config_keeps_arguments_in_normal_form():
    config = LocallyConnected2D(3, (2, 3), strides=2, padding="SAME").get_config()
    assert config["kernel_size"] == (2, 3) and config["strides"] == (2, 2)
    assert config["padding"] == "same"


def test_gradients_reach_every_weight_and_the_input():
    layer = LocallyConnected2D(4, 3, strides=(1, 2), bias_initializer="random_normal")
    x = np.random.default_rng(4).normal(size=(2, 6, 7, 3)).astype("float32")
    grad_x, (grad_kernel, grad_bias) = layer_gradients(layer, x)
    assert grad_kernel.shape == (4 * 3, 27, 4) and grad_bias.shape == (4, 3, 4)
    # d sum(y) / d bias is 1 per output per batch item; d / d kernel is the summed patch.
    np.testing.assert_allclose(grad_bias, np.full((4, 3, 4), 2.0))
    np.testing.assert_allclose(grad_kernel[0, :, 0], x[:, :3, :3, :].sum(0).reshape(-1), rtol=1e-5)
    assert np.all(np.isfinite(grad_x)) and np.any(grad_x != 0)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0, 3), {}, "filters"),
        ((2.5, 3), {}, "filters"),
        ((2, (3,)), {}, "kernel_size"),
        ((2, 0), {}, "kernel_size"),
        ((2, 3), {"strides": (1, -1)}, "strides"),
        ((2, 3), {"padding": "full"}, "padding"),
        ((2, 3), {"data_format": "NCHW"}, "data_format"),
        ((2, 3), {"activation": "no_such_activation"}, "no_such_activation"),
    ],
)
def test_bad_arguments_raise(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        LocallyConnected2D(*args, **kwargs)


def test_impossible_shapes_raise():
    with pytest.raises(ValueError, match="smaller than `kernel_size`"):
        LocallyConnected2D(2, 5).build((None, 4, 8, 3))
    with pytest.raises(ValueError, match="must be known"):
        LocallyConnected2D(2, 3)(keras.Input((None, None, 3)))
    with pytest.raises(ValueError, match="must be known"):
        LocallyConnected2D(2, 3).build((None, 8, 8, None))
    layer = LocallyConnected2D(2, 3)
    layer.build((None, 5, 5, 3))
    with pytest.raises(ValueError, match="shape"):
        load_keras2_weights(layer, [np.zeros((9, 27, 3)), np.zeros((3, 3, 2))])
