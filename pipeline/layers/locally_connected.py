"""Locally connected 2D layer: a convolution whose weights differ at every output position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from pipeline.layers.arguments import (
    int_at_least,
    positive_int_pair,
    standardize_data_format,
)


def _output_length(length: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-length // stride)
    return (length - kernel) // stride + 1 if length >= kernel else 0


def same_padding_before(length: int, kernel: int, stride: int) -> int:
    """Rows of zeros before the input for `"same"` padding, as `Conv2D` pads (extra row after)."""
    out = -(-length // stride)
    return max((out - 1) * stride + kernel - length, 0) // 2


@keras.saving.register_keras_serializable(package="pipeline")
class LocallyConnected2D(keras.layers.Layer):
    """2D convolution with unshared weights: every output position has its own kernel and bias.

    With `P = out_rows * out_cols` output positions and patches of `K = kh * kw * C` values
    (ordered row, column, channel), the layer computes
    `y[b, p, f] = activation(sum_k patch[b, p, k] * kernel[p, k, f] + bias[p, f])`,
    where `patch[b, p]` is the input window of output position `p`. `out_rows` is
    `(H - kh) // sh + 1` for `"valid"` and `ceil(H / sh)` for `"same"` (zero padding placed
    as `keras.layers.Conv2D` places it); likewise for columns. The patches are extracted
    once, with `kh * kw` strided slices, and the product is one batched matrix multiply
    (`P` products of `(batch, K) x (K, filters)`), so the cost is the arithmetic itself, not
    one op per position.

    Args:
        filters: Number of output channels, a positive int.
        kernel_size: Window size, an int or a pair `(kh, kw)`.
        strides: Step between windows, an int or a pair. Defaults to `(1, 1)`.
        padding: `"valid"` (default, no padding) or `"same"` (zero padding so that the
            output has `ceil(H / stride)` rows and `ceil(W / stride)` columns, placed as
            `Conv2D` places it; Keras 2's layer placed it differently for even kernels and
            some strides).
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`. The weights have the same layout for both.
        activation: Activation applied to the output. Defaults to none (linear).
        use_bias: Whether to add a bias per output position and filter. Defaults to `True`.
        kernel_initializer: Initializer of the kernel. Defaults to `"glorot_uniform"` (as in
            Keras 2, whose fan computation multiplies both fans by `P`).
        bias_initializer: Initializer of the bias. Defaults to `"zeros"`.
        kernel_regularizer: Regularizer of the kernel. Defaults to none.
        bias_regularizer: Regularizer of the bias. Defaults to none.
        activity_regularizer: Regularizer of the output. Defaults to none.
        kernel_constraint: Constraint on the kernel. Defaults to none.
        bias_constraint: Constraint on the bias. Defaults to none.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Weights:
        `kernel` of shape `(P, kh * kw * C, filters)` and `bias` of shape
        `(out_rows, out_cols, filters)`, the layout of Keras 2's `implementation=1` for
        `channels_last`; `pipeline.layers.load_keras2_weights` converts the other layouts.

    Input shape:
        4D tensor `(batch, H, W, C)` (or `(batch, C, H, W)`) with known `H`, `W` and `C`:
        the weights depend on them.

    Output shape:
        4D tensor `(batch, out_rows, out_cols, filters)` (or
        `(batch, filters, out_rows, out_cols)`).

    Example:

    >>> layer = LocallyConnected2D(64, 3)
    >>> print(layer(keras.ops.zeros((2, 9, 9, 256))).shape)
    (2, 7, 7, 64)

    Why: on aligned inputs (faces, cropped objects, small feature maps from a convolutional
    base) the useful filter differs from place to place, and a locally connected head learns
    position-specific filters with far fewer weights than a `Dense` layer on the flattened map.
    Keras 3 dropped Keras 2's `LocallyConnected2D`; this is its replacement, written with
    `keras.ops` for every backend. Keras 2's `implementation` argument is gone: this layer
    is both the memory-lean and the fast variant.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = (1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs,
    ) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"`padding` must be 'valid' or 'same', got padding={padding!r}.")
        self.filters = int_at_least(filters, "filters", 1)
        self.kernel_size = positive_int_pair(kernel_size, "kernel_size")
        self.strides = positive_int_pair(strides, "strides")
        self.padding = padding.lower()
        self.data_format = standardize_data_format(data_format)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _spatial_and_channels(self, input_shape) -> tuple[Any, Any, Any]:
        if self.data_format == "channels_last":
            return input_shape[1], input_shape[2], input_shape[3]
        return input_shape[2], input_shape[3], input_shape[1]

    def _output_size(self, rows: int | None, cols: int | None) -> tuple[Any, Any]:
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        out_rows = None if rows is None else _output_length(rows, kh, sh, self.padding)
        out_cols = None if cols is None else _output_length(cols, kw, sw, self.padding)
        return out_rows, out_cols

    def build(self, input_shape) -> None:
        if len(input_shape) != 4:
            raise ValueError(
                f"{self.__class__.__name__} expects a 4D input, got shape {tuple(input_shape)}."
            )
        rows, cols, channels = self._spatial_and_channels(input_shape)
        if rows is None or cols is None or channels is None:
            raise ValueError(
                f"{self.__class__.__name__} has weights per position and channel, so the "
                f"input's height, width and channels must be known; got input shape "
                f"{tuple(input_shape)} with `data_format`={self.data_format!r}."
            )
        out_rows, out_cols = self._output_size(rows, cols)
        if out_rows < 1 or out_cols < 1:
            raise ValueError(
                f"{self.__class__.__name__}: input of height x width {rows}x{cols} is smaller "
                f"than `kernel_size`={self.kernel_size} with `padding`='valid'; use a larger "
                "input, a smaller `kernel_size` or `padding`='same'."
            )
        self.input_rows, self.input_cols, self.input_channels = rows, cols, channels
        self.output_rows, self.output_cols = out_rows, out_cols
        kh, kw = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel",
            shape=(out_rows * out_cols, kh * kw * channels, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(out_rows, out_cols, self.filters),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        channel_axis = -1 if self.data_format == "channels_last" else 1
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={channel_axis: channels})

    def _patches(self, x):
        """`(P, batch, kh * kw * C)` patches of an `(H, W, batch, C)` input, ordered row, column,
        channel.

        The input is padded or cropped to `blocks * stride` rows and columns and reshaped so
        that a stride becomes an axis of its own; then each of the `kh * kw` kernel offsets is
        one contiguous slice. Contiguous slices (gradient: a pad) are several times faster to
        differentiate than strided ones on TensorFlow, and there is one per kernel offset, not
        per output position, and no identity-kernel convolution (which would cost `K` times the
        layer's own arithmetic). Positions come first so the matrix product needs no transpose
        of the patches.
        """
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        out_rows, out_cols = self.output_rows, self.output_cols
        row_blocks, col_blocks = out_rows + (kh - 1) // sh, out_cols + (kw - 1) // sw
        top = same_padding_before(self.input_rows, kh, sh) if self.padding == "same" else 0
        left = same_padding_before(self.input_cols, kw, sw) if self.padding == "same" else 0
        bottom = row_blocks * sh - self.input_rows - top
        right = col_blocks * sw - self.input_cols - left
        if top or left or bottom > 0 or right > 0:
            x = ops.pad(x, ((top, max(bottom, 0)), (left, max(right, 0)), (0, 0), (0, 0)))
        batch, channels = ops.shape(x)[2], self.input_channels
        if bottom < 0 or right < 0:  # rows or columns that no window reaches
            x = ops.slice(x, (0, 0, 0, 0), (row_blocks * sh, col_blocks * sw, batch, channels))
        x = ops.reshape(x, (row_blocks, sh, col_blocks, sw, batch, channels))
        size = (out_rows, 1, out_cols, 1, batch, channels)
        slices = [
            ops.slice(x, (i // sh, i % sh, j // sw, j % sw, 0, 0), size)
            for i in range(kh)
            for j in range(kw)
        ]
        patches = ops.concatenate(slices, axis=-1)  # (out_rows, 1, out_cols, 1, batch, K)
        return ops.reshape(patches, (out_rows * out_cols, batch, kh * kw * channels))

    def call(self, inputs):
        # (H, W, batch, C): one input-sized transpose, instead of one of the k*k times larger
        # patches, lets the product run as P independent (batch x K) @ (K x F) matrix products.
        if self.data_format == "channels_first":
            x = ops.transpose(inputs, (2, 3, 0, 1))
        else:
            x = ops.transpose(inputs, (1, 2, 0, 3))
        outputs = ops.matmul(self._patches(x), self.kernel)  # (P, batch, F)
        outputs = ops.reshape(outputs, (self.output_rows, self.output_cols, -1, self.filters))
        if self.use_bias:
            outputs = outputs + self.bias[:, :, None, :]
        if self.data_format == "channels_first":
            outputs = ops.transpose(outputs, (2, 3, 0, 1))
        else:
            outputs = ops.transpose(outputs, (2, 0, 1, 3))
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        rows, cols, _ = self._spatial_and_channels(input_shape)
        out_rows, out_cols = self._output_size(rows, cols)
        if self.data_format == "channels_last":
            return (input_shape[0], out_rows, out_cols, self.filters)
        return (input_shape[0], self.filters, out_rows, out_cols)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
        }
