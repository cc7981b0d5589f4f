"""The depthwise convolution whose gradients run as forward convolutions: TensorFlow's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from pipeline.models.depthwise_gradients import depthwise_conv2d


def _gradients(convolve, images, kernel, upstream):
    with tf.GradientTape() as tape:
        tape.watch([images, kernel])
        outputs = convolve(images, kernel)
        loss = tf.reduce_sum(tf.cast(outputs, tf.float32) * upstream)
    return outputs, tape.gradient(loss, [images, kernel])


@pytest.mark.parametrize(("height", "width", "kernel_size", "stride", "padding"), [
    (12, 12, 5, 1, "same"), (12, 15, 3, 2, "same"), (13, 11, 5, 2, "same"),
    (9, 10, 3, 1, "valid"), (11, 11, 3, 2, "valid"), (4, 4, 5, 1, "same"),
])
def test_outputs_and_both_gradients_are_tensorflows(height, width, kernel_size, stride, padding):
    rng = np.random.default_rng(height * 100 + width)
    images = tf.constant(rng.normal(size=(3, height, width, 6)), tf.float32)
    kernel = tf.constant(rng.normal(size=(kernel_size, kernel_size, 6, 1)), tf.float32)

    def native(x, w):
        return tf.nn.depthwise_conv2d(x, w, [1, stride, stride, 1], padding.upper())

    def ours(x, w):
        return depthwise_conv2d(x, w, (stride, stride), padding)

    expected = native(images, kernel)
    upstream = tf.constant(rng.normal(size=expected.shape), tf.float32)
    outputs, (d_images, d_kernel) = _gradients(ours, images, kernel, upstream)
    _, (e_images, e_kernel) = _gradients(native, images, kernel, upstream)
    np.testing.assert_array_equal(outputs, expected)
    np.testing.assert_allclose(d_images, e_images, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_kernel, e_kernel, rtol=1e-5, atol=1e-4)


def test_a_batch_of_unknown_size_traces_and_bfloat16_stays_close():
    rng = np.random.default_rng(0)
    kernel = tf.constant(rng.normal(size=(5, 5, 8, 1)), tf.bfloat16)

    @tf.function(input_signature=[tf.TensorSpec((None, 10, 10, 8), tf.bfloat16)])
    def kernel_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(kernel)
            loss = tf.reduce_sum(tf.cast(depthwise_conv2d(x, kernel, (1, 1), "same"), tf.float32))
        return tape.gradient(loss, kernel)

    images = rng.normal(size=(4, 10, 10, 8))
    ours = kernel_gradient(tf.constant(images, tf.bfloat16))
    assert ours.dtype == tf.bfloat16 and ours.shape == (5, 5, 8, 1)
    with tf.GradientTape() as tape:
        exact = tf.constant(np.asarray(kernel, dtype="float32"))
        tape.watch(exact)
        loss = tf.reduce_sum(tf.nn.depthwise_conv2d(tf.constant(images, tf.float32), exact,
                                                    [1, 1, 1, 1], "SAME"))
    reference = tape.gradient(loss, exact)
    np.testing.assert_allclose(tf.cast(ours, tf.float32), reference, rtol=0.03, atol=0.3)
