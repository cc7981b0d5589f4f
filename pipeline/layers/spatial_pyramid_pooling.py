"""Spatial pyramid pooling: a fixed-length vector from a feature map of any height and width."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from pipeline.layers.arguments import positive_int_tuple, standardize_data_format

_POOLINGS = {"max": "max", "avg": "avg", "average": "avg"}


def bin_edges(length: int, bins: int) -> list[tuple[int, int]]:
    """The `[start, end)` rows of each bin when `length` rows are split into `bins` bins.

    `start = floor(i * length / bins)` and `end = ceil((i + 1) * length / bins)`: the bins
    cover every row, each holds at least one row, and neighbours overlap by at most one row
    when `length` is not a multiple of `bins` (or when `length < bins`).
    """
    if length < 1 or bins < 1:
        raise ValueError(f"`length` and `bins` must be >= 1, got length={length}, bins={bins}.")
    return [((i * length) // bins, -((-(i + 1) * length) // bins)) for i in range(bins)]


def _bin_mask(length, bins: int):
    """`(bins, length)` boolean mask, True where a row belongs to a bin.

    A known `length` (a Python int: every JAX and PyTorch call, and TensorFlow calls on a
    fixed size) gives a NumPy constant, so nothing about the bins is traced. A `None`
    dimension under TensorFlow's graph tracing arrives as a scalar tensor and takes
    `_traced_bin_mask`.
    """
    if isinstance(length, (int, np.integer)):
        edges = np.asarray(bin_edges(int(length), bins))
        rows = np.arange(length)[None, :]
        return (rows >= edges[:, :1]) & (rows < edges[:, 1:])
    return _traced_bin_mask(length, bins)


def _traced_bin_mask(length, bins: int):
    """`_bin_mask` for a length only known at run time, with integer tensor ops.

    Needs a backend whose arrays may have a length decided inside a traced function:
    TensorFlow can (`tf.range` of a tensor); JAX cannot (its traced shapes are always
    concrete, so it never gets here).
    """
    index = ops.arange(bins, dtype="int32")
    length = ops.cast(length, "int32")
    starts = ops.floor_divide(index * length, bins)
    ends = ops.floor_divide((index + 1) * length + (bins - 1), bins)
    rows = ops.arange(length, dtype="int32")
    return ops.logical_and(
        ops.greater_equal(rows[None, :], starts[:, None]),
        ops.less(rows[None, :], ends[:, None]),
    )


def _length(x, axis: int):
    """The static size of `axis` when the shape knows it, else its run-time size (a tensor)."""
    size = x.shape[axis]
    return ops.shape(x)[axis] if size is None else int(size)


def _row_normalised(mask, dtype):
    """A bin mask as averaging weights (each row sums to 1), in NumPy when the mask is."""
    if isinstance(mask, np.ndarray):
        return ops.convert_to_tensor(mask / mask.sum(axis=1, keepdims=True), dtype=dtype)
    weights = ops.cast(mask, dtype)
    return weights / ops.sum(weights, axis=1, keepdims=True)


@keras.saving.register_keras_serializable(package="pipeline")
class SpatialPyramidPooling(keras.layers.Layer):
    """Pools a feature map over a pyramid of grids into one vector of fixed length.

    For each level `n` in `levels` the `H x W` map is cut into an `n x n` grid of bins and
    each bin is max- or average-pooled per channel. Along an axis of length `a`, bin `i`
    covers rows `floor(i * a / n)` to `ceil((i + 1) * a / n) - 1`, so there are exactly `n`
    bins, none empty, even when `a < n` (bins then overlap). The output concatenates the
    levels in order; within a level the bins are in row-major order and the channels vary
    fastest: `output[:, offset_n + (i * n + j) * C + c]` is bin `(i, j)`, channel `c` of
    level `n`. Its length is `C * sum(n * n for n in levels)` whatever `H` and `W` are.

    Each level is a masked max (or a masked average: two small matrix products) with a
    `(n, H)` and an `(n, W)` bin mask. When `H` and `W` are known while tracing (always on
    JAX and PyTorch, whose traced shapes are concrete, and on TensorFlow for a fixed input
    size) the masks are NumPy constants; a `None` size in a TensorFlow graph builds them with
    tensor ops, so one graph serves every size. On JAX each new size is traced and compiled
    again, like any shape change there.

    Args:
        levels: Grid sizes of the pyramid, positive ints. Defaults to `(1, 2, 4)`, which
            gives `21 * C` features.
        pooling: `"max"` (default) or `"avg"` (alias `"average"`).
        data_format: `"channels_last"` (`(batch, H, W, C)`) or `"channels_first"`
            (`(batch, C, H, W)`). Defaults to `keras.config.image_data_format()`. The output
            order is the same for both.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch, H, W, C)` (or `(batch, C, H, W)`); `H` and `W` may be `None`,
        `C` must be known.

    Output shape:
        2D tensor `(batch, C * sum(n * n for n in levels))`.

    Example:

    >>> x = keras.Input((None, None, 8))
    >>> SpatialPyramidPooling(levels=(1, 2, 4))(x).shape
    (None, 168)

    Why: a classifier head on top of a convolutional base normally needs a fixed input size
    (`Flatten` + `Dense`) or throws away all spatial layout (global pooling). Spatial pyramid
    pooling (He et al., 2014, "Spatial Pyramid Pooling in Deep Convolutional Networks")
    keeps a coarse layout and yields the same length for any image size, so one model can
    train and predict on images of several sizes. The bin edges here differ from the paper's
    pooling window `ceil(a/n)` with stride `floor(a/n)`, which gives the wrong number of bins
    for some sizes (e.g. 8 bins instead of 6 for `a=9, n=6`) and none at all when `a < n`.
    """

    def __init__(
        self,
        levels: Sequence[int] = (1, 2, 4),
        pooling: str = "max",
        data_format: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(pooling, str) or pooling.lower() not in _POOLINGS:
            raise ValueError(f"`pooling` must be 'max' or 'avg', got pooling={pooling!r}.")
        self.levels = positive_int_tuple(levels, "levels")
        self.pooling = _POOLINGS[pooling.lower()]
        self.data_format = standardize_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape) -> None:
        if len(input_shape) != 4:
            raise ValueError(
                f"{self.__class__.__name__} expects a 4D input (batch, H, W, C) or "
                f"(batch, C, H, W), got shape {tuple(input_shape)}."
            )
        channels = input_shape[self._channel_axis()]
        if channels is None:
            raise ValueError(
                f"{self.__class__.__name__} needs a known channel dimension, got input shape "
                f"{tuple(input_shape)} with `data_format`={self.data_format!r}."
            )
        spatial = input_shape[1:3] if self.data_format == "channels_last" else input_shape[2:]
        if any(size is not None and size < 1 for size in spatial):
            raise ValueError(
                f"{self.__class__.__name__} needs a non-empty feature map, got input shape "
                f"{tuple(input_shape)}."
            )
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={self._channel_axis(): channels})

    def call(self, inputs):
        x = inputs
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 3, 1))
        channels = x.shape[-1]
        if self.pooling == "avg" and self.compute_dtype in ("float16", "bfloat16"):
            # Averages are sums first: keep them in float32 (the result is cast back).
            x = ops.cast(x, "float32")
        height, width = _length(x, 1), _length(x, 2)
        pooled = []
        for n in self.levels:
            if n == 1:
                level = ops.max(x, axis=(1, 2)) if self.pooling == "max" else ops.mean(x, (1, 2))
            else:
                mask_h, mask_w = _bin_mask(height, n), _bin_mask(width, n)
                grid = (
                    self._pool_max(x, mask_h, mask_w)
                    if self.pooling == "max"
                    else self._pool_avg(x, mask_h, mask_w)
                )
                level = ops.reshape(grid, (-1, n * n * channels))
            pooled.append(level)
        outputs = pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)
        return ops.cast(outputs, self.compute_dtype)

    @staticmethod
    def _pool_max(x, mask_h, mask_w):
        """Separable masked max: over the columns of each column bin, then over the rows.

        A max over a rectangle is the max over its rows of the max over its columns, so two
        broadcasts of size `n` times the input replace `n * n` dynamic slices.
        """
        lowest = ops.convert_to_tensor(float("-inf"), dtype=x.dtype)
        # (B, H, 1, W, C) against (n, W, 1) -> (B, H, n, W, C) -> max over W.
        cols = ops.max(ops.where(mask_w[:, :, None], x[:, :, None, :, :], lowest), axis=3)
        # (B, 1, H, n, C) against (n, H, 1, 1) -> (B, n, H, n, C) -> max over H.
        return ops.max(ops.where(mask_h[:, :, None, None], cols[:, None], lowest), axis=2)

    @staticmethod
    def _pool_avg(x, mask_h, mask_w):
        """Average as two small matrix products with row-normalised bin masks."""
        weights_h, weights_w = _row_normalised(mask_h, x.dtype), _row_normalised(mask_w, x.dtype)
        cols = ops.einsum("bhwc,jw->bhjc", x, weights_w)
        return ops.einsum("ih,bhjc->bijc", weights_h, cols)

    def compute_output_shape(self, input_shape):
        channels = input_shape[self._channel_axis()]
        size = None if channels is None else channels * sum(n * n for n in self.levels)
        return (input_shape[0], size)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "levels": list(self.levels),
            "pooling": self.pooling,
            "data_format": self.data_format,
        }
