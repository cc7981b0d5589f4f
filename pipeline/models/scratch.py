"""The classic small convnet trained from scratch (Chollet, Deep Learning with Python, 5.2)."""

from __future__ import annotations

import keras

from pipeline.errors import PipelineError
from pipeline.models.classifier import output_layer

FILTERS = (32, 64, 128, 128)


def smallest_image_size() -> int:
    """The smallest square input the four conv+pool blocks leave at least 1x1."""
    size = 1
    for _ in FILTERS:
        size = size * 2 + 2  # undo a 2x2 max-pool, then a 3x3 valid convolution
    return size


def build_scratch_convnet(
    image_size: int,
    num_classes: int,
    *,
    dropout: float = 0.0,
    l2: float = 0.0,
    augmentation: keras.Layer | None = None,
) -> keras.Model:
    """Four Conv2D+MaxPooling blocks (32-64-128-128), Flatten, Dense 512, classifier output.

    Takes raw RGB images (0..255) of ``image_size`` squared; ``augmentation`` runs
    first (training only), then rescaling to 0..1. ``dropout`` goes before the dense
    layer, ``l2`` is a weight penalty on every kernel.
    """
    if image_size < smallest_image_size():
        raise PipelineError(
            f"`image_size` {image_size} is too small for this convnet; use at least "
            f"{smallest_image_size()} (150 is the classic choice)"
        )
    if not 0.0 <= dropout < 1.0:
        raise PipelineError(f"`dropout` must be in [0, 1), got {dropout}")
    if l2 < 0:
        raise PipelineError(f"`l2` must be >= 0, got {l2}")
    regularizer = keras.regularizers.L2(l2) if l2 else None

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = augmentation(inputs) if augmentation is not None else inputs
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(x)
    for index, filters in enumerate(FILTERS, start=1):
        x = keras.layers.Conv2D(
            filters, 3, activation="relu", kernel_regularizer=regularizer, name=f"conv{index}"
        )(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(512, activation="relu", kernel_regularizer=regularizer, name="dense")(x)
    outputs = output_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name="scratch_convnet")
