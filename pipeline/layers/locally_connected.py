"""Locally connected 2D layer: a convolution whose weights differ at every output position."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from pipeline.layers.arguments import standardize_data_format


def _pair(value: Any, name: str) -> tuple[int, int]:
    """An int or a pair of ints, all positive, as a pair."""
    values = (value, value) if isinstance(value, (int, np.integer)) else value
    if (
        not isinstance(values, Sequence)
        or len(values) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in values)
    ):
        raise ValueError(
            f"`{name}` must be a positive int or a pair of positive ints, got {name}={value!r}."
        )
    return int(values[0]), int(values[1])


def _output_length(length: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-length // stride)
    return (length - kernel) // stride + 1 if length >= kernel else 0


def _pad_before(length: int, kernel: int, stride: int) -> int:
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
        `channels_last`; `load_keras2_weights` converts the other layouts.

    Input shape:
        4D tensor `(batch, H, W, C)` (or `(batch, C, H, W)`) with known `H`, `W` and `C`:
        the weights depend on them.

    Output shape:
        4D tensor `(batch, out_rows, out_cols, filters)` (or
        `(batch, filters, out_rows, out_cols)`).

    Example:

    >>> layer = LocallyConnected2D(64, 3)
    >>> print(layer(np.zeros((2, 9, 9, 256), "float32")).shape)
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
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"`filters` must be a positive int, got filters={filters!r}.")
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"`padding` must be 'valid' or 'same', got padding={padding!r}.")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
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
                f"{tuple(input_shape)} with data_format={self.data_format!r}."
            )
        out_rows, out_cols = self._output_size(rows, cols)
        if out_rows < 1 or out_cols < 1:
            raise ValueError(
                f"{self.__class__.__name__}: input of height x width {rows}x{cols} is smaller "
                f"than kernel_size={self.kernel_size} with padding='valid'; use a larger input, "
                "a smaller kernel or padding='same'."
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
        top = _pad_before(self.input_rows, kh, sh) if self.padding == "same" else 0
        left = _pad_before(self.input_cols, kw, sw) if self.padding == "same" else 0
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
        config = super().get_config()
        config.update(
            {
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
        )
        return config


def _keras2_connected_range(out_pos: np.ndarray, length: int, kernel: int, stride: int,
                            padding: str) -> tuple[np.ndarray, np.ndarray]:
    """Input rows `[start, end)` that Keras 2 connects to each output row (its conv_utils rule)."""
    left = kernel // 2
    centre = out_pos * stride + (left if padding == "valid" else 0)
    return np.maximum(0, centre - left), np.minimum(length, centre - left + kernel)


def load_keras2_weights(layer: LocallyConnected2D, keras2_layer_or_weights: Any) -> None:
    """Set `layer`'s weights from a Keras 2 (`tf_keras`) `LocallyConnected2D`.

    Args:
        layer: A `LocallyConnected2D`, built on the same input shape as the Keras 2 layer
            (it is built here when it is not, from the Keras 2 layer's input shape).
        keras2_layer_or_weights: The Keras 2 layer itself (any `implementation`, either
            `data_format`; its `padding`, `kernel_size`, `strides` and `filters` are
            checked against `layer`'s), or its `get_weights()` list `[kernel]` or
            `[kernel, bias]` from `implementation=1` or `2` in `layer`'s data format
            (`implementation=3` needs the layer: its kernel is a list of values whose
            positions only the layer knows).

    Keras 2 stores the `channels_first` patches channel-first and reshapes (rather than
    transposes) its `(rows, cols, filters)` bias into `(filters, rows, cols)`; both are
    converted so that the outputs are the same. For `padding="same"`, Keras 2 centres the
    window at `stride * o` instead of padding as `Conv2D` does; the weights are imported when
    every connection Keras 2 makes exists here (e.g. odd kernels with stride 1), otherwise a
    ValueError says so.
    """
    if hasattr(keras2_layer_or_weights, "get_weights"):
        source = keras2_layer_or_weights
        weights = [np.asarray(w) for w in source.get_weights()]
        implementation = int(getattr(source, "implementation", 1))
        data_format = source.data_format
        padding = source.padding
        for name in ("kernel_size", "strides", "filters"):
            if tuple(np.atleast_1d(getattr(source, name))) != tuple(
                np.atleast_1d(getattr(layer, name))
            ):
                raise ValueError(
                    f"Keras 2 layer has {name}={getattr(source, name)!r} but the layer has "
                    f"{name}={getattr(layer, name)!r}."
                )
        if padding != layer.padding:
            raise ValueError(
                f"Keras 2 layer has padding={padding!r} but the layer has "
                f"padding={layer.padding!r}."
            )
        if not layer.built:
            # A Keras 2 layer called eagerly records no input shape: then `layer` must be built.
            with contextlib.suppress(AttributeError):
                layer.build(tuple(source.input_shape))
        kernel_idxs = getattr(source, "kernel_idxs", None)
    else:
        weights = [np.asarray(w) for w in keras2_layer_or_weights]
        data_format, padding, kernel_idxs = layer.data_format, layer.padding, None
        if not weights:
            raise ValueError("No weights given: expected [kernel] or [kernel, bias].")
        implementation = {3: 1, 6: 2, 1: 3}.get(weights[0].ndim)
        if implementation is None:
            raise ValueError(
                f"Unrecognised Keras 2 kernel of shape {weights[0].shape}: expected 3D "
                "(implementation=1) or 6D (implementation=2)."
            )
    if not layer.built:
        raise ValueError("Build `layer` (call it on an input) before loading weights into it.")
    if len(weights) != (2 if layer.use_bias else 1):
        raise ValueError(
            f"Expected {2 if layer.use_bias else 1} weight arrays for use_bias="
            f"{layer.use_bias}, got {len(weights)}."
        )

    rows, cols, channels = layer.input_rows, layer.input_cols, layer.input_channels
    out_rows, out_cols, filters = layer.output_rows, layer.output_cols, layer.filters
    (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
    kernel = np.zeros((out_rows * out_cols, kh * kw * channels, filters), "float32")

    if implementation == 1:
        expected = kernel.shape
        if weights[0].shape != expected:
            raise ValueError(f"Keras 2 kernel has shape {weights[0].shape}, expected {expected}.")
        if data_format == "channels_first":
            # Keras 2 orders channels_first patches (C, kh, kw); here they are (kh, kw, C).
            k2 = weights[0].reshape(out_rows * out_cols, channels, kh, kw, filters)
            kernel[:] = k2.transpose(0, 2, 3, 1, 4).reshape(kernel.shape)
        else:
            kernel[:] = weights[0]
    else:
        # Implementations 2 and 3: a list of (output pos, filter, input pos, channel, value).
        if implementation == 2:
            k2 = weights[0]
            if data_format == "channels_first":  # (C, rows, cols, F, out_rows, out_cols)
                k2 = k2.transpose(1, 2, 0, 4, 5, 3)
            expected = (rows, cols, channels, out_rows, out_cols, filters)
            if k2.shape != expected:
                raise ValueError(f"Keras 2 kernel has shape {k2.shape}, expected {expected}.")
            mask = np.zeros(expected[:2] + expected[3:5], bool)
            o_r, o_c = np.meshgrid(np.arange(out_rows), np.arange(out_cols), indexing="ij")
            r0, r1 = _keras2_connected_range(o_r, rows, kh, sh, padding)
            c0, c1 = _keras2_connected_range(o_c, cols, kw, sw, padding)
            for a, b in np.ndindex(out_rows, out_cols):
                mask[r0[a, b] : r1[a, b], c0[a, b] : c1[a, b], a, b] = True
            i_r, i_c, o_r, o_c = np.nonzero(mask)
            values = k2[i_r, i_c, :, o_r, o_c, :]  # (connections, C, F)
            n = len(i_r)
            i_r, i_c, o_r, o_c = (np.repeat(v, channels * filters) for v in (i_r, i_c, o_r, o_c))
            ch = np.tile(np.repeat(np.arange(channels), filters), n)
            f = np.tile(np.arange(filters), n * channels)
            values = values.reshape(-1)
        else:
            if kernel_idxs is None:
                raise ValueError(
                    "An implementation=3 kernel is a flat list of values; pass the Keras 2 "
                    "layer itself so that their positions are known."
                )
            idxs = np.asarray(kernel_idxs)
            values = weights[0]
            if data_format == "channels_first":
                f, o_r, o_c = np.unravel_index(idxs[:, 0], (filters, out_rows, out_cols))
                ch, i_r, i_c = np.unravel_index(idxs[:, 1], (channels, rows, cols))
            else:
                o_r, o_c, f = np.unravel_index(idxs[:, 0], (out_rows, out_cols, filters))
                i_r, i_c, ch = np.unravel_index(idxs[:, 1], (rows, cols, channels))
        di = i_r - (o_r * sh - (_pad_before(rows, kh, sh) if padding == "same" else 0))
        dj = i_c - (o_c * sw - (_pad_before(cols, kw, sw) if padding == "same" else 0))
        if np.any((di < 0) | (di >= kh) | (dj < 0) | (dj >= kw)):
            raise ValueError(
                "The Keras 2 layer connects inputs that fall outside this layer's windows: "
                f"Keras 2 places padding='same' windows differently for kernel_size="
                f"{layer.kernel_size}, strides={layer.strides} and input {rows}x{cols}."
            )
        kernel[o_r * out_cols + o_c, (di * kw + dj) * channels + ch, f] = values

    new_weights = [kernel]
    if layer.use_bias:
        bias = weights[1]
        if bias.shape != (out_rows, out_cols, filters):
            raise ValueError(
                f"Keras 2 bias has shape {bias.shape}, expected {(out_rows, out_cols, filters)}."
            )
        if data_format == "channels_first":
            # Keras 2 adds reshape(bias, (filters, rows, cols)): a reshape, not a transpose.
            bias = bias.reshape(filters, out_rows, out_cols).transpose(1, 2, 0)
        new_weights.append(bias)
    layer.set_weights(new_weights)
