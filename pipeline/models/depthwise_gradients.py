"""A depthwise convolution whose gradients run as forward convolutions (TensorFlow, CPU).

TensorFlow's CPU kernels for the depthwise convolution's backward pass are far slower than
its forward pass, worst in bfloat16: on a 2-core Zen 4, for a 5x5 kernel on a
16x60x60x144 batch, the forward pass took 4.5 ms in bfloat16 and the filter gradient 102 ms;
the input gradient of a stride-2 3x3 kernel at 120 px took 71 ms against 4.5 ms forward.
That made whole-base fine-tuning of EfficientNet-Lite slower in mixed precision than in
float32. Both gradients are convolutions themselves, and the fast forward kernel computes
them:

- input gradient: the (for stride s, zero-upsampled) output gradient, correlated with the
  kernel flipped in both spatial axes;
- filter gradient (stride 1): for each channel, the padded input correlated with the output
  gradient, summed over the batch. With the batch folded into the channels (``B*C``
  channels, one image), that is one depthwise convolution whose kernel is the output
  gradient; its ``k x k`` outputs are summed over ``B`` in float32. Stride 2 keeps
  TensorFlow's own filter gradient, which is fast enough there.

Same numbers as ``tf.nn.depthwise_conv2d``'s gradients to float rounding
(``tests/models/test_depthwise_gradients.py``). Measured faster only in bfloat16 here, so
``pipeline.models.training_graph`` uses it for bfloat16 compute alone.
"""

from __future__ import annotations

import tensorflow as tf


def _output_and_pads(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int, int]:
    """Output length and the (before, after) padding of one spatial axis, as TensorFlow pads."""
    if padding == "valid":
        return (size - kernel) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def _upsample(gradient: tf.Tensor, axis: int, stride: int, length: int) -> tf.Tensor:
    """``stride - 1`` zeros after every element along ``axis`` (1 or 2), cut to ``length``."""
    if stride == 1:
        return gradient
    zeros = [tf.zeros_like(gradient)] * (stride - 1)
    stacked = tf.stack([gradient, *zeros], axis=axis + 1)  # (..., n, stride, ...)
    shape = tf.concat([tf.shape(gradient)[:axis], [-1], tf.shape(gradient)[axis + 1:]], 0)
    spread = tf.reshape(stacked, shape)
    return spread[:, :length] if axis == 1 else spread[:, :, :length]


def depthwise_conv2d(inputs: tf.Tensor, kernel: tf.Tensor, strides: tuple[int, int],
                     padding: str) -> tf.Tensor:
    """``tf.nn.depthwise_conv2d`` (NHWC, depth multiplier 1, no dilation) with the gradients
    above. ``kernel``: (kh, kw, C, 1); ``padding``: ``same`` or ``valid``."""
    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
    sh, sw = int(strides[0]), int(strides[1])
    height, width = int(inputs.shape[1]), int(inputs.shape[2])
    out_h, top, bottom = _output_and_pads(height, kh, sh, padding)
    out_w, left, right = _output_and_pads(width, kw, sw, padding)
    tf_padding = padding.upper()

    @tf.custom_gradient
    def convolve(x, w):
        y = tf.nn.depthwise_conv2d(x, w, [1, sh, sw, 1], tf_padding)

        def gradients(dy):
            # Input: correlate the upsampled gradient with the flipped kernel.
            spread_h, spread_w = (out_h - 1) * sh + 1, (out_w - 1) * sw + 1
            dz = _upsample(_upsample(dy, 1, sh, spread_h), 2, sw, spread_w)
            before_h, before_w = kh - 1 - top, kw - 1 - left
            dz = tf.pad(dz, [[0, 0], [before_h, height + kh - 1 - before_h - spread_h],
                             [before_w, width + kw - 1 - before_w - spread_w], [0, 0]])
            dx = tf.nn.depthwise_conv2d(dz, tf.reverse(w, [0, 1]), [1, 1, 1, 1], "VALID")
            # Filter.
            if sh == sw == 1:
                channels = int(x.shape[3])
                padded = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
                images = tf.reshape(tf.transpose(padded, [1, 2, 3, 0]),
                                    (1, height + top + bottom, width + left + right, -1))
                taps = tf.reshape(tf.transpose(dy, [1, 2, 3, 0]), (out_h, out_w, -1, 1))
                per_image = tf.nn.depthwise_conv2d(images, taps, [1, 1, 1, 1], "VALID")
                summed = tf.reduce_sum(
                    tf.reshape(tf.cast(per_image, tf.float32), (kh, kw, channels, -1)), -1,
                    keepdims=True)
                dw = tf.cast(summed, w.dtype)
            else:
                dw = tf.nn.depthwise_conv2d_backprop_filter(x, tf.shape(w), dy, [1, sh, sw, 1],
                                                            tf_padding)
            return dx, dw

        return y, gradients

    return convolve(inputs, kernel)
