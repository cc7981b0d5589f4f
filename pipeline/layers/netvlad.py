"""NetVLAD: a trainable VLAD descriptor that pools a set of local descriptors into one vector."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from pipeline.layers.arguments import int_at_least, positive_float, standardize_data_format
from pipeline.layers.kmeans import kmeans, squared_distances


@keras.saving.register_keras_serializable(package="pipeline")
class NetVLAD(keras.layers.Layer):
    """Aggregates `N` local descriptors into one `clusters * D` vector of soft-assigned residuals.

    For descriptors `x_n` (length `D`), `K = clusters` centres `c_k` and `G = ghost_clusters`
    extra ("ghost") clusters:

        a[n, k] = softmax_k(x_n . W[:, k] + b[k])            over all K + G clusters
        V[k] = sum_n a[n, k] * (x_n - c_k)
             = (A^T X)[k] - (sum_n a[n, k]) * c_k             for the K real clusters only
        V[k] <- V[k] / sqrt(||V[k]||^2 + epsilon)             (intra-normalisation)
        v = flatten(V) / sqrt(||flatten(V)||^2 + epsilon)    (index k * D + d)

    `W` (`D x (K + G)`) and `b` are a 1x1 convolution. The residual sum is computed with a
    matrix product and a rank-1 correction, so no `batch x N x K x D` tensor is ever built.
    Ghost clusters (GhostVLAD, Zhong et al., 2018) take part in the softmax but not in the
    output: descriptors that fit none of the real clusters (background, noise) go there and
    weigh less. The softmax, the sums and the norms run in float32 (or the variable dtype)
    whatever the compute dtype, because the sums over `N` descriptors and the squared norms
    overflow float16; the result is cast to the compute dtype.

    Args:
        clusters: Number of clusters `K`, a positive int.
        ghost_clusters: Number of ghost clusters `G`, an int >= 0. Defaults to 0 (NetVLAD).
        alpha: Sharpness that ties the initial `W` and `b` to the initial centres, as in the
            NetVLAD paper: `W[:, k] = 2 * alpha * c_k`, `b[k] = -alpha * ||c_k||^2`, so that
            the initial assignment is `softmax_k(-alpha * ||x - c_k||^2)`. Defaults to 1.0.
            Only the initialisation uses it; `init_netvlad_from_features` sets the weights
            from k-means centres (and estimates alpha from the data unless given).
        epsilon: Added to squared norms before the square root, so that a zero residual
            normalises to zero with finite gradients. Defaults to 1e-12.
        data_format: For 4D inputs, `"channels_last"` (`(batch, H, W, D)`) or
            `"channels_first"` (`(batch, D, H, W)`). Defaults to
            `keras.config.image_data_format()`. 3D inputs are always `(batch, N, D)`.
        centers_initializer: Initializer of the `K + G` initial centres (those of the ghost
            clusters only set their `W` and `b`). Defaults to `"glorot_uniform"`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Weights:
        `kernel` `(D, K + G)`, `bias` `(K + G,)`, `centers` `(K, D)`.

    Input shape:
        3D tensor `(batch, N, D)` or 4D tensor `(batch, H, W, D)` (`(batch, D, H, W)`);
        `N`, `H` and `W` may be `None`, `D` must be known.

    Output shape:
        2D tensor `(batch, clusters * D)`, of unit L2 norm.

    Example:

    >>> x = keras.Input((None, None, 128))
    >>> NetVLAD(clusters=16, ghost_clusters=2)(x).shape
    (None, 2048)

    Why: global average or max pooling keeps one statistic per channel and loses how the
    local descriptors are distributed. VLAD keeps, per visual word, the mean offset of the
    descriptors near it, which is what place recognition and retrieval need; NetVLAD
    (Arandjelovic et al., 2016, "NetVLAD: CNN architecture for weakly supervised place
    recognition") makes the hard assignment soft so that the whole pooling trains end to end.
    The paper also L2-normalises each descriptor first; put
    `keras.layers.UnitNormalization(axis=-1)` before this layer to do the same.
    """

    def __init__(
        self,
        clusters: int,
        ghost_clusters: int = 0,
        alpha: float = 1.0,
        epsilon: float = 1e-12,
        data_format: str | None = None,
        centers_initializer: Any = "glorot_uniform",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.clusters = int_at_least(clusters, "clusters", 1)
        self.ghost_clusters = int_at_least(ghost_clusters, "ghost_clusters", 0)
        self.alpha = positive_float(alpha, "alpha")
        self.epsilon = positive_float(epsilon, "epsilon")
        self.data_format = standardize_data_format(data_format)
        self.centers_initializer = keras.initializers.get(centers_initializer)
        self.input_spec = keras.layers.InputSpec(min_ndim=3, max_ndim=4)

    def _feature_axis(self, ndim: int) -> int:
        return 1 if ndim == 4 and self.data_format == "channels_first" else -1

    def build(self, input_shape) -> None:
        if len(input_shape) not in (3, 4):
            raise ValueError(
                f"{self.__class__.__name__} expects a 3D (batch, N, D) or 4D (batch, H, W, D) "
                f"input, got shape {tuple(input_shape)}."
            )
        axis = self._feature_axis(len(input_shape))
        dim = input_shape[axis]
        if dim is None:
            raise ValueError(
                f"{self.__class__.__name__} needs a known descriptor dimension D, got input "
                f"shape {tuple(input_shape)} with `data_format`={self.data_format!r}."
            )
        self.dim = int(dim)
        total = self.clusters + self.ghost_clusters
        drawn: dict[str, Any] = {}

        def all_centres():
            # One draw shared by the three initialisers, so that W and b match the centres
            # (kept, not cleared after build, in case a backend defers the initialisers).
            if "centres" not in drawn:
                drawn["centres"] = ops.cast(
                    self.centers_initializer(shape=(total, self.dim), dtype="float32"),
                    self.variable_dtype,
                )
            return drawn["centres"]

        def kernel_init(shape, dtype=None):
            return ops.cast(2.0 * self.alpha * ops.transpose(all_centres()), dtype)

        def bias_init(shape, dtype=None):
            return ops.cast(-self.alpha * ops.sum(ops.square(all_centres()), axis=1), dtype)

        def centers_init(shape, dtype=None):
            return ops.cast(all_centres()[: self.clusters], dtype)

        # autocast=False: the layer computes in the variable dtype (see the class docstring).
        self.kernel = self.add_weight(
            name="kernel", shape=(self.dim, total), initializer=kernel_init, autocast=False
        )
        self.bias = self.add_weight(
            name="bias", shape=(total,), initializer=bias_init, autocast=False
        )
        self.centers = self.add_weight(
            name="centers",
            shape=(self.clusters, self.dim),
            initializer=centers_init,
            autocast=False,
        )
        self.input_spec = keras.layers.InputSpec(ndim=len(input_shape), axes={axis: self.dim})

    def call(self, inputs):
        dtype = self.variable_dtype
        x = ops.cast(inputs, dtype)
        if len(x.shape) == 4 and self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 3, 1))
        x = ops.reshape(x, (ops.shape(x)[0], -1, self.dim))  # (B, N, D)
        kernel = ops.convert_to_tensor(self.kernel, dtype=dtype)
        bias = ops.convert_to_tensor(self.bias, dtype=dtype)
        centers = ops.convert_to_tensor(self.centers, dtype=dtype)
        logits = ops.einsum("bnd,dk->bnk", x, kernel) + bias
        assignment = ops.softmax(logits, axis=-1)[:, :, : self.clusters]  # (B, N, K)
        # sum_n a[n, k] (x_n - c_k) = (A^T X)[k] - (sum_n a[n, k]) c_k: no (B, N, K, D) tensor.
        weighted = ops.einsum("bnk,bnd->bkd", assignment, x)
        mass = ops.sum(assignment, axis=1)  # (B, K)
        vlad = weighted - mass[:, :, None] * centers[None, :, :]
        vlad = vlad / ops.sqrt(ops.sum(ops.square(vlad), axis=-1, keepdims=True) + self.epsilon)
        vlad = ops.reshape(vlad, (-1, self.clusters * self.dim))
        vlad = vlad / ops.sqrt(ops.sum(ops.square(vlad), axis=-1, keepdims=True) + self.epsilon)
        return ops.cast(vlad, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        dim = input_shape[self._feature_axis(len(input_shape))]
        return (input_shape[0], None if dim is None else self.clusters * dim)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "clusters": self.clusters,
            "ghost_clusters": self.ghost_clusters,
            "centers_initializer": keras.initializers.serialize(self.centers_initializer),
            "alpha": self.alpha,
            "epsilon": self.epsilon,
            "data_format": self.data_format,
        }


def init_netvlad_from_features(
    layer: NetVLAD,
    features: np.ndarray,
    alpha: float | None = None,
    seed: int | None = 0,
    max_samples: int = 50_000,
    iterations: int = 20,
) -> float:
    """Set a NetVLAD layer's centres, `W` and `b` from k-means on local descriptors.

    The NetVLAD paper's initialisation: k-means centres `c_k` on descriptors of the
    training images, `W[:, k] = 2 * alpha * c_k` and `b[k] = -alpha * ||c_k||^2`, so that
    the soft assignment starts as `softmax_k(-alpha * ||x - c_k||^2)` around the centres.
    With ghost clusters, k-means finds `K + G` centres; the last `G` set only the ghost
    columns of `W` and `b`.

    Args:
        layer: The `NetVLAD` layer; built here on `(None, None, D)` if it is not built yet.
        features: Local descriptors along the last axis, any shape `(..., D)` (e.g.
            channels-last conv features `(images, H, W, D)`; transpose channels-first ones),
            reshaped to `(N, D)`.
        alpha: Sharpness. Defaults to `None`: estimated as `-log(0.01) / mean(d2 - d1)`
            over the sample, with `d1`, `d2` the squared distances to the nearest and
            second nearest centre, so that the nearest centre gets on average 100 times
            the weight of the second (as in the widely used PyTorch NetVLAD code).
        seed: Seed of the descriptor sample and of k-means++. Defaults to 0.
        max_samples: At most this many descriptors (drawn without replacement) go into
            k-means. Defaults to 50,000.
        iterations: Maximum Lloyd iterations. Defaults to 20.

    Returns:
        The alpha used.
    """
    if not isinstance(layer, NetVLAD):
        raise ValueError(f"`layer` must be a NetVLAD layer, got {type(layer).__name__}.")
    features = np.asarray(features)
    if features.ndim < 2:
        raise ValueError(f"`features` must have shape (..., D), got {features.shape}.")
    features = features.reshape(-1, features.shape[-1])
    if not layer.built:
        layer.build((None, None, features.shape[1]))
    if features.shape[1] != layer.dim:
        raise ValueError(
            f"`features` have D={features.shape[1]} but the layer was built for D={layer.dim}."
        )
    total = layer.clusters + layer.ghost_clusters
    if len(features) < total:
        raise ValueError(
            f"k-means needs at least `clusters` + `ghost_clusters` = {total} descriptors, "
            f"got {len(features)}."
        )
    rng = np.random.default_rng(seed)
    if len(features) > max_samples:
        features = features[rng.choice(len(features), max_samples, replace=False)]
    features = features.astype(np.float64)  # the sample only: k-means distances in float64
    if not np.all(np.isfinite(features)):
        raise ValueError("`features` contain NaN or infinite values.")
    centres, _ = kmeans(features, total, iterations=iterations, seed=seed)
    if alpha is None:
        if total < 2:
            alpha = layer.alpha  # one cluster: every assignment is 1 whatever alpha is
        else:
            nearest = np.sort(squared_distances(features, centres), axis=1)[:, :2]
            gap = float(np.mean(nearest[:, 1] - nearest[:, 0]))
            alpha = -np.log(0.01) / gap if gap > 0 else layer.alpha
    alpha = positive_float(alpha, "alpha")
    layer.kernel.assign((2.0 * alpha * centres.T).astype(layer.kernel.dtype))
    layer.bias.assign((-alpha * (centres**2).sum(1)).astype(layer.bias.dtype))
    layer.centers.assign(centres[: layer.clusters].astype(layer.centers.dtype))
    return alpha
