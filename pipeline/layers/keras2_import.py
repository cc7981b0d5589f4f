"""Weights of a Keras 2 (`tf_keras`) `LocallyConnected2D` for this package's `LocallyConnected2D`.

Keras 2's layer stores its kernel in one of three layouts, chosen by its `implementation`
argument: 1, a dense `(positions, patch, filters)` kernel like ours; 2, a mostly-zero
`(rows, cols, C, out_rows, out_cols, filters)` kernel; 3, a flat list of values with their
positions in `kernel_idxs`. Each is read by its own function into one form, and layouts 2
and 3 go through a list of connections (output position, filter, input position, channel,
value) that is scattered into our kernel.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from pipeline.layers.locally_connected import LocallyConnected2D, same_padding_before

# ndim of a `get_weights()` kernel -> Keras 2 implementation that stores it so.
_IMPLEMENTATION_BY_KERNEL_NDIM = {3: 1, 6: 2, 1: 3}


@dataclass(frozen=True)
class Keras2Weights:
    """A Keras 2 layer's weights and the settings needed to read their layout."""

    weights: list[np.ndarray]
    implementation: int
    data_format: str
    padding: str
    kernel_idxs: np.ndarray | None = None


class Connections(NamedTuple):
    """Parallel arrays, one entry per weight: output row/column, filter, input row/column,
    channel, and the weight's value."""

    out_row: np.ndarray
    out_col: np.ndarray
    filter: np.ndarray
    in_row: np.ndarray
    in_col: np.ndarray
    channel: np.ndarray
    value: np.ndarray


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
        source = read_keras2_layer(layer, keras2_layer_or_weights)
    else:
        source = read_weight_list(layer, keras2_layer_or_weights)
    if not layer.built:
        raise ValueError("Build `layer` (call it on an input) before loading weights into it.")
    expected = 2 if layer.use_bias else 1
    if len(source.weights) != expected:
        raise ValueError(
            f"Expected {expected} weight arrays for `use_bias`={layer.use_bias}, "
            f"got {len(source.weights)}."
        )
    if source.implementation == 1:
        kernel = kernel_from_implementation_1(layer, source)
    else:
        if source.implementation == 2:
            connections = connections_from_implementation_2(layer, source)
        else:
            connections = connections_from_implementation_3(layer, source)
        kernel = kernel_from_connections(layer, connections, source.padding)
    new_weights = [kernel]
    if layer.use_bias:
        new_weights.append(bias_from_keras2(layer, source.weights[1], source.data_format))
    layer.set_weights(new_weights)


def read_keras2_layer(layer: LocallyConnected2D, keras2_layer: Any) -> Keras2Weights:
    """The weights and layout of a Keras 2 layer, checked against `layer`'s arguments."""
    for name in ("kernel_size", "strides", "filters", "padding"):
        theirs, ours = getattr(keras2_layer, name), getattr(layer, name)
        if np.atleast_1d(theirs).tolist() != np.atleast_1d(ours).tolist():
            raise ValueError(
                f"The Keras 2 layer has `{name}`={theirs!r} but the layer has `{name}`={ours!r}."
            )
    if not layer.built:
        # A Keras 2 layer called eagerly records no input shape: then `layer` must be built.
        with contextlib.suppress(AttributeError):
            layer.build(tuple(keras2_layer.input_shape))
    idxs = getattr(keras2_layer, "kernel_idxs", None)
    return Keras2Weights(
        weights=[np.asarray(w) for w in keras2_layer.get_weights()],
        implementation=int(getattr(keras2_layer, "implementation", 1)),
        data_format=keras2_layer.data_format,
        padding=keras2_layer.padding,
        kernel_idxs=None if idxs is None else np.asarray(idxs),
    )


def read_weight_list(layer: LocallyConnected2D, weights: Any) -> Keras2Weights:
    """A bare `get_weights()` list, its implementation told by the kernel's rank."""
    weights = [np.asarray(w) for w in weights]
    if not weights:
        raise ValueError("No weights given: expected [kernel] or [kernel, bias].")
    implementation = _IMPLEMENTATION_BY_KERNEL_NDIM.get(weights[0].ndim)
    if implementation is None:
        raise ValueError(
            f"Unrecognised Keras 2 kernel of shape {weights[0].shape}: expected 3D "
            "(implementation=1) or 6D (implementation=2)."
        )
    return Keras2Weights(weights, implementation, layer.data_format, layer.padding)


def kernel_from_implementation_1(layer: LocallyConnected2D, source: Keras2Weights) -> np.ndarray:
    """Implementation 1 is our layout, but for the patch order of `channels_first`."""
    positions = layer.output_rows * layer.output_cols
    (kh, kw), channels = layer.kernel_size, layer.input_channels
    shape = (positions, kh * kw * channels, layer.filters)
    kernel = source.weights[0]
    if kernel.shape != shape:
        raise ValueError(f"Keras 2 kernel has shape {kernel.shape}, expected {shape}.")
    if source.data_format == "channels_first":
        # Keras 2 orders channels_first patches (C, kh, kw); here they are (kh, kw, C).
        kernel = kernel.reshape(positions, channels, kh, kw, layer.filters)
        kernel = kernel.transpose(0, 2, 3, 1, 4).reshape(shape)
    return kernel.astype("float32")


def _keras2_connected_range(
    out_pos: np.ndarray, length: int, kernel: int, stride: int, padding: str
) -> tuple[np.ndarray, np.ndarray]:
    """Input rows `[start, end)` that Keras 2 connects to each output row (its conv_utils rule)."""
    left = kernel // 2
    centre = out_pos * stride + (left if padding == "valid" else 0)
    return np.maximum(0, centre - left), np.minimum(length, centre - left + kernel)


def connections_from_implementation_2(
    layer: LocallyConnected2D, source: Keras2Weights
) -> Connections:
    """The weights of a dense `(rows, cols, C, out_rows, out_cols, F)` kernel that Keras 2
    connects (the others are zeros by construction)."""
    rows, cols, channels = layer.input_rows, layer.input_cols, layer.input_channels
    out_rows, out_cols, filters = layer.output_rows, layer.output_cols, layer.filters
    (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
    kernel = source.weights[0]
    if source.data_format == "channels_first":  # (C, rows, cols, F, out_rows, out_cols)
        kernel = kernel.transpose(1, 2, 0, 4, 5, 3)
    expected = (rows, cols, channels, out_rows, out_cols, filters)
    if kernel.shape != expected:
        raise ValueError(f"Keras 2 kernel has shape {kernel.shape}, expected {expected}.")
    mask = np.zeros((rows, cols, out_rows, out_cols), bool)
    o_r, o_c = np.meshgrid(np.arange(out_rows), np.arange(out_cols), indexing="ij")
    r0, r1 = _keras2_connected_range(o_r, rows, kh, sh, source.padding)
    c0, c1 = _keras2_connected_range(o_c, cols, kw, sw, source.padding)
    for a, b in np.ndindex(out_rows, out_cols):
        mask[r0[a, b] : r1[a, b], c0[a, b] : c1[a, b], a, b] = True
    i_r, i_c, o_r, o_c = np.nonzero(mask)
    values = kernel[i_r, i_c, :, o_r, o_c, :]  # (connections, C, F)
    per_pair = channels * filters
    return Connections(
        out_row=np.repeat(o_r, per_pair),
        out_col=np.repeat(o_c, per_pair),
        filter=np.tile(np.arange(filters), len(i_r) * channels),
        in_row=np.repeat(i_r, per_pair),
        in_col=np.repeat(i_c, per_pair),
        channel=np.tile(np.repeat(np.arange(channels), filters), len(i_r)),
        value=values.reshape(-1),
    )


def connections_from_implementation_3(
    layer: LocallyConnected2D, source: Keras2Weights
) -> Connections:
    """A flat kernel whose positions are the Keras 2 layer's `kernel_idxs` (flat indices of
    (output, input) in the data format's order)."""
    if source.kernel_idxs is None:
        raise ValueError(
            "An implementation=3 kernel is a flat list of values; pass the Keras 2 "
            "layer itself so that their positions are known."
        )
    rows, cols, channels = layer.input_rows, layer.input_cols, layer.input_channels
    out_rows, out_cols, filters = layer.output_rows, layer.output_cols, layer.filters
    outputs, inputs = source.kernel_idxs[:, 0], source.kernel_idxs[:, 1]
    if source.data_format == "channels_first":
        f, o_r, o_c = np.unravel_index(outputs, (filters, out_rows, out_cols))
        ch, i_r, i_c = np.unravel_index(inputs, (channels, rows, cols))
    else:
        o_r, o_c, f = np.unravel_index(outputs, (out_rows, out_cols, filters))
        i_r, i_c, ch = np.unravel_index(inputs, (rows, cols, channels))
    return Connections(o_r, o_c, f, i_r, i_c, ch, source.weights[0])


def kernel_from_connections(
    layer: LocallyConnected2D, connections: Connections, padding: str
) -> np.ndarray:
    """Scatter connections into our `(positions, kh * kw * C, F)` kernel, refusing those that
    fall outside our windows (Keras 2's "same" windows for even kernels or some strides)."""
    (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
    top = same_padding_before(layer.input_rows, kh, sh) if padding == "same" else 0
    left = same_padding_before(layer.input_cols, kw, sw) if padding == "same" else 0
    di = connections.in_row - (connections.out_row * sh - top)
    dj = connections.in_col - (connections.out_col * sw - left)
    if np.any((di < 0) | (di >= kh) | (dj < 0) | (dj >= kw)):
        raise ValueError(
            "The Keras 2 layer connects inputs that fall outside this layer's windows: "
            f"Keras 2 places padding='same' windows differently for `kernel_size`="
            f"{layer.kernel_size}, `strides`={layer.strides} and input "
            f"{layer.input_rows}x{layer.input_cols}."
        )
    channels = layer.input_channels
    kernel = np.zeros(
        (layer.output_rows * layer.output_cols, kh * kw * channels, layer.filters), "float32"
    )
    position = connections.out_row * layer.output_cols + connections.out_col
    patch_index = (di * kw + dj) * channels + connections.channel
    kernel[position, patch_index, connections.filter] = connections.value
    return kernel


def bias_from_keras2(layer: LocallyConnected2D, bias: np.ndarray, data_format: str) -> np.ndarray:
    """Keras 2's `(out_rows, out_cols, F)` bias as the values it really adds at each place."""
    shape = (layer.output_rows, layer.output_cols, layer.filters)
    if bias.shape != shape:
        raise ValueError(f"Keras 2 bias has shape {bias.shape}, expected {shape}.")
    if data_format == "channels_first":
        # Keras 2 adds reshape(bias, (filters, rows, cols)): a reshape, not a transpose.
        bias = bias.reshape(layer.filters, *shape[:2]).transpose(1, 2, 0)
    return bias
