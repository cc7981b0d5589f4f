"""Data augmentation as Keras preprocessing layers, placed inside the model.

Inside the model the layers run on the accelerator with the rest of the step, are
active only in training (``fit``), and are saved with the model, which then behaves
as plain inference on new images.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from pipeline.data.pca_color import PCAColorAugmentation


@keras.saving.register_keras_serializable(package="pipeline")
class RandomShear(keras.layers.RandomShear):
    """Keras' ``RandomShear`` with a configuration that loads back.

    Keras 3's layer writes its factors as ranges like ``[-0.2, 0.2]`` that its own
    constructor then refuses, so a saved model with it could not be loaded; this
    subclass writes the factors as they were given.
    """

    def __init__(self, x_factor=0.0, y_factor=0.0, **kwargs) -> None:
        super().__init__(x_factor, y_factor, **kwargs)
        self.given_factors = (x_factor, y_factor)

    def get_config(self) -> dict:
        config = super().get_config()
        config["x_factor"], config["y_factor"] = self.given_factors
        return config


PLACEMENTS = ("auto", "model", "data")


@dataclass
class AugmentConfig:
    """The classic set of Chollet's book, each part adjustable (0 or False turns it off).

    ``shear`` follows Keras 3's ``RandomShear`` (a shear factor, not degrees);
    ``fill_mode`` ``nearest`` is what ``ImageDataGenerator`` did.
    ``pca_color`` is the standard deviation of AlexNet's colour shift (0.1 in the paper).
    """

    rotation: float = 40.0  # degrees, both ways
    width_shift: float = 0.2  # fraction of the width
    height_shift: float = 0.2  # fraction of the height
    shear: float = 0.2
    zoom: float = 0.2  # zoom in or out by up to this fraction
    horizontal_flip: bool = True
    pca_color: float = 0.0
    fill_mode: str = "nearest"
    # Where the layers run while training from images: "model" (the model's first layers: on a
    # GPU, on the accelerator), "data" (mapped over tf.data: CPU threads augment the next
    # batch while the step runs) or "auto": data on a CPU, where bench/bench_augment_placement.py
    # measured it 1.4x faster here (91 vs 65 images/s), model on a GPU.
    placement: str = "auto"

    def validate(self) -> None:
        from pipeline.errors import PipelineError

        if self.placement not in PLACEMENTS:
            raise PipelineError(f"`placement` {self.placement!r}: choose one of "
                                f"{', '.join(PLACEMENTS)}")

        for name in ("rotation", "width_shift", "height_shift", "shear", "zoom", "pca_color"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not 0 <= value < float("inf")):  # NaN fails every comparison
                raise PipelineError(f"`{name}` {value!r}: must be a finite number, 0 or more")
        if self.rotation > 180:
            raise PipelineError(f"`rotation` {self.rotation}: is in degrees, at most 180")
        # Keras' layers take these as fractions of the image; above 1 a shift moves the whole
        # image out of view and a zoom of more than 100 % has no meaning (Keras raises deep
        # inside the model build).
        for name in ("width_shift", "height_shift", "zoom"):
            if getattr(self, name) > 1:
                raise PipelineError(
                    f"`{name}` {getattr(self, name)}: is a fraction of the image, at most 1 "
                    "(0.2 is 20 %)"
                )
        if self.fill_mode not in ("nearest", "reflect", "wrap", "constant"):
            raise PipelineError(
                f"`fill_mode` {self.fill_mode!r}: choose nearest, reflect, wrap or constant"
            )


def build_augmentation(
    config: AugmentConfig,
    pca: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int | None = None,
) -> keras.Sequential | None:
    """A ``Sequential`` of the enabled augmentation layers, or None when none is enabled.

    ``pca`` holds the training set's RGB eigenvalues and eigenvectors; it is needed
    only when ``config.pca_color > 0``.
    """
    config.validate()
    layers: list[keras.layers.Layer] = []
    fill = config.fill_mode
    if config.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if config.rotation:
        rotation = config.rotation / 360.0  # Keras takes a fraction of a full turn
        layers.append(keras.layers.RandomRotation(rotation, fill_mode=fill, seed=seed))
    if config.width_shift or config.height_shift:
        layers.append(
            keras.layers.RandomTranslation(
                config.height_shift, config.width_shift, fill_mode=fill, seed=seed
            )
        )
    if config.shear:
        layers.append(RandomShear(config.shear, config.shear, fill_mode=fill, seed=seed))
    if config.zoom:
        layers.append(keras.layers.RandomZoom(config.zoom, config.zoom, fill_mode=fill, seed=seed))
    if config.pca_color:
        if pca is None:
            raise ValueError("pca_color > 0 needs the RGB principal components of the training set")
        values, vectors = pca
        layers.append(
            PCAColorAugmentation(values.tolist(), vectors.tolist(), config.pca_color, seed=seed)
        )
    return keras.Sequential(layers, name="augmentation") if layers else None
