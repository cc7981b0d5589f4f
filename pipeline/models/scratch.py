"""Convnets trained from scratch: the two small models of Chollet's Deep Learning with Python.

- ``convnet``: the first edition's (5.2): four Conv2D+MaxPooling blocks, Flatten, Dense 512.
  The classic baseline, 150 px.
- ``mini_xception``: the second edition's answer to the same task (9.3): residual blocks of
  depthwise separable convolutions with batch normalization, global average pooling, 180 px.
  A fifth of the parameters: separable convolutions assume channels and space can be learned
  apart, which suits small data; batch normalization and the residual shortcuts keep a
  deeper stack trainable.

Both take raw RGB images (0..255): ``augmentation`` runs first (training only), then
rescaling to 0..1. ``dropout`` goes before the dense layers, ``l2`` is a weight penalty on
the kernels of every layer but the output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras

from pipeline.errors import PipelineError
from pipeline.models.classifier import output_layer

FILTERS = (32, 64, 128, 128)
XCEPTION_FILTERS = (32, 64, 128, 256, 512)


def smallest_image_size() -> int:
    """The smallest square input the convnet's four conv+pool blocks leave at least 1x1."""
    size = 1
    for _ in FILTERS:
        size = size * 2 + 2  # undo a 2x2 max-pool, then a 3x3 valid convolution
    return size


def _features_convnet(x, regularizer) -> keras.KerasTensor:
    for index, filters in enumerate(FILTERS, start=1):
        x = keras.layers.Conv2D(
            filters, 3, activation="relu", kernel_regularizer=regularizer, name=f"conv{index}"
        )(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
    return keras.layers.Flatten(name="flatten")(x)


def _dense_convnet(x, regularizer) -> keras.KerasTensor:
    return keras.layers.Dense(512, activation="relu", kernel_regularizer=regularizer,
                              name="dense")(x)


def _features_mini_xception(x, regularizer) -> keras.KerasTensor:
    # Biases are left out where batch normalization follows: its offset does their job.
    x = keras.layers.Conv2D(32, 5, use_bias=False, kernel_regularizer=regularizer,
                            name="stem")(x)
    for index, filters in enumerate(XCEPTION_FILTERS, start=1):
        shortcut = x
        for part in (1, 2):
            x = keras.layers.BatchNormalization(name=f"block{index}_bn{part}")(x)
            x = keras.layers.Activation("relu", name=f"block{index}_relu{part}")(x)
            x = keras.layers.SeparableConv2D(
                filters, 3, padding="same", use_bias=False, depthwise_regularizer=regularizer,
                pointwise_regularizer=regularizer, name=f"block{index}_sepconv{part}",
            )(x)
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{index}_pool")(x)
        shortcut = keras.layers.Conv2D(  # the shortcut matches the block's new shape
            filters, 1, strides=2, padding="same", use_bias=False,
            kernel_regularizer=regularizer, name=f"block{index}_shortcut",
        )(shortcut)
        x = keras.layers.Add(name=f"block{index}_add")([x, shortcut])
    return keras.layers.GlobalAveragePooling2D(name="gap")(x)


@dataclass(frozen=True)
class Architecture:
    """A from-scratch convnet: its layers, the book's image size and the smallest it takes."""

    name: str
    image_size: int
    smallest_size: int
    features: Callable
    dense: Callable | None = None  # layers between the dropout and the output, if any


ARCHITECTURES = {
    "convnet": Architecture("convnet", 150, smallest_image_size(), _features_convnet,
                            _dense_convnet),
    "mini_xception": Architecture("mini_xception", 180, 5, _features_mini_xception),
}


def architecture(name: str) -> Architecture:
    """The architecture called ``name``; a one-line error naming the choices otherwise."""
    if name not in ARCHITECTURES:
        raise PipelineError(f"`architecture` {name!r}: choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def build_scratch_convnet(
    image_size: int,
    num_classes: int,
    *,
    architecture_name: str = "convnet",
    dropout: float = 0.0,
    l2: float = 0.0,
    augmentation: keras.Layer | None = None,
) -> keras.Model:
    """The ``architecture_name`` convnet for ``image_size`` squared raw images (see above)."""
    chosen = architecture(architecture_name)
    if image_size < chosen.smallest_size:
        raise PipelineError(
            f"`image_size` {image_size} is too small for {chosen.name}; use at least "
            f"{chosen.smallest_size} ({chosen.image_size} is the book's choice)"
        )
    if not 0.0 <= dropout < 1.0:
        raise PipelineError(f"`dropout` must be in [0, 1), got {dropout}")
    if l2 < 0:
        raise PipelineError(f"`l2` must be >= 0, got {l2}")
    regularizer = keras.regularizers.L2(l2) if l2 else None

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = augmentation(inputs) if augmentation is not None else inputs
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(x)
    x = chosen.features(x, regularizer)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    if chosen.dense is not None:
        x = chosen.dense(x, regularizer)
    outputs = output_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name=f"scratch_{chosen.name}")
