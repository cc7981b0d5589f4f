"""Classifier heads that sit on a conv base's feature map, chosen by name (``head``).

A head is a plain stack of layers, built fresh by a recipe in ``HEADS``. The same stack
is trained alone on cached features (``build_head``) and joined to the conv base for a
model that takes images (``stack``), so its weights move between the two unchanged.
Every layer of a head is named ``head_*`` except the output, ``predictions``; that is how
``pipeline.models.transfer`` tells head from base in a saved model.

To add a head, register a recipe in ``HEADS``: a function of ``HeadOptions`` (the shared
knobs) returning the layers before the output, each named ``head_*``. A layer of our own
must be imported here, so that saved models holding it load. Heads whose layers start
from data (NetVLAD's k-means centres) are set up by ``initialise_head``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

from pipeline.errors import PipelineError
from pipeline.layers.locally_connected import LocallyConnected2D
from pipeline.layers.netvlad import NetVLAD, init_netvlad_from_features
from pipeline.layers.spatial_pyramid_pooling import SpatialPyramidPooling
from pipeline.models.classifier import output_layer
from pipeline.models.head_options import HeadOptions

HEAD_PREFIX = "head_"
OUTPUT_NAME = "predictions"


def _dense_dropout(options: HeadOptions) -> list[keras.layers.Layer]:
    layers: list[keras.layers.Layer] = []
    if options.dense:
        layers.append(keras.layers.Dense(options.dense, activation="relu", name="head_dense"))
    if options.dropout:
        layers.append(keras.layers.Dropout(options.dropout, name="head_dropout"))
    return layers


def _flatten(options: HeadOptions) -> list[keras.layers.Layer]:
    """The book's head: Flatten, Dense 256 ReLU, Dropout 0.5."""
    return [keras.layers.Flatten(name="head_flatten"), *_dense_dropout(options)]


def _global_average(options: HeadOptions) -> list[keras.layers.Layer]:
    """Global average pooling, Dropout: few weights, so less to overfit."""
    layers: list[keras.layers.Layer] = [keras.layers.GlobalAveragePooling2D(name="head_gap")]
    if options.dropout:
        layers.append(keras.layers.Dropout(options.dropout, name="head_dropout"))
    return layers


def _spatial_pyramid(options: HeadOptions) -> list[keras.layers.Layer]:
    """Spatial pyramid pooling (1x1, 2x2, 4x4 max), Dense, Dropout: coarse layout kept."""
    return [SpatialPyramidPooling((1, 2, 4), name="head_spp"), *_dense_dropout(options)]


def _netvlad(options: HeadOptions) -> list[keras.layers.Layer]:
    """NetVLAD over the feature map's local descriptors, Dense, Dropout: an orderless pool."""
    vlad = NetVLAD(options.clusters, ghost_clusters=options.ghost_clusters, name="head_netvlad")
    return [vlad, *_dense_dropout(options)]


def _locally_connected(options: HeadOptions) -> list[keras.layers.Layer]:
    """A 3x3 locally connected layer (weights per position, as in DeepFace), Flatten, Dense."""
    local = LocallyConnected2D(
        options.local_filters, 3, padding="same", activation="relu", name="head_local"
    )
    return [local, keras.layers.Flatten(name="head_flatten"), *_dense_dropout(options)]


HEADS: dict[str, Callable[[HeadOptions], list[keras.layers.Layer]]] = {
    "flatten": _flatten,
    "gap": _global_average,
    "spp": _spatial_pyramid,
    "netvlad": _netvlad,
    "local": _locally_connected,
}
# Heads whose output length does not depend on the feature map's size (multi-size training).
SIZE_AGNOSTIC_HEADS = ("gap", "spp", "netvlad")


def check_head(name: str, options: HeadOptions) -> None:
    """Refuse an unknown head or impossible options, with the field to change."""
    if name not in HEADS:
        raise PipelineError(f"`head` {name!r}: choose one of {', '.join(HEADS)}")
    options.validate()


def head_layers(name: str, num_classes: int, options: HeadOptions) -> list[keras.layers.Layer]:
    """Fresh layers of head ``name``, output layer last."""
    check_head(name, options)
    layers = [*HEADS[name](options), output_layer(num_classes, name=OUTPUT_NAME)]
    for layer in layers:
        if layer.name != OUTPUT_NAME and not layer.name.startswith(HEAD_PREFIX):
            raise ValueError(f"head {name!r}: layer {layer.name!r} must be named {HEAD_PREFIX}*")
    return layers


def stack(layers: Sequence[keras.layers.Layer], x: keras.KerasTensor) -> keras.KerasTensor:
    """Apply ``layers`` one after another to ``x``."""
    for layer in layers:
        x = layer(x)
    return x


def build_head(
    name: str,
    input_shape: Sequence[int],
    num_classes: int,
    options: HeadOptions | None = None,
    layers: Sequence[keras.layers.Layer] | None = None,
) -> keras.Model:
    """Head ``name`` as a model of its own, taking feature maps of ``input_shape`` (H, W, C).

    ``layers``: the head's layers to stack (default: a fresh head ``name``); the part after
    ``split_pooling`` takes the pooled vectors instead.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    if layers is None:
        layers = head_layers(name, num_classes, options or HeadOptions())
    return keras.Model(inputs, stack(layers, inputs), name=f"head_{name}")


# Layers that pool a map to a vector with no weights and no randomness: a head that starts
# with them computes the same whether they run once, while features are cached, or on every
# epoch. Cached pooled, a GAP head's features are C numbers instead of H x W x C: the head's
# epochs then cost milliseconds instead of re-reading the maps.
WEIGHTLESS_POOLING = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def split_pooling(
    layers: Sequence[keras.layers.Layer],
) -> tuple[list[keras.layers.Layer], list[keras.layers.Layer]]:
    """``(leading weightless pooling layers, the rest)`` of a head's ``layers``."""
    count = 0
    while count < len(layers) and isinstance(layers[count], WEIGHTLESS_POOLING):
        count += 1
    return list(layers[:count]), list(layers[count:])


def is_head_layer(layer: keras.layers.Layer) -> bool:
    return layer.name == OUTPUT_NAME or layer.name.startswith(HEAD_PREFIX)


def initialise_head(
    layers: Sequence[keras.layers.Layer], features: np.ndarray, seed: int = 0
) -> None:
    """Start data-dependent head layers from ``features`` (images, H, W, C) of training images.

    NetVLAD: k-means centres of the local descriptors, ``W`` and ``b`` as the paper sets
    them. Other layers need nothing.
    """
    for layer in layers:
        if isinstance(layer, NetVLAD):
            init_netvlad_from_features(layer, np.asarray(features, dtype="float32"), seed=seed)


def needs_initialisation(name: str) -> bool:
    """Whether head ``name`` starts from a sample of training features (``initialise_head``)."""
    return name == "netvlad"
