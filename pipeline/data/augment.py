"""Data augmentation as Keras preprocessing layers, placed inside the model.

Inside the model the layers run on the accelerator with the rest of the step, are
active only in training (``fit``), and are saved with the model, which then behaves
as plain inference on new images. What to augment (``AugmentConfig``) is in
``augment_options``, light enough for the command line's ``--help``; re-exported here.
"""

from __future__ import annotations

import keras
import numpy as np

from pipeline.data.augment_options import PLACEMENTS, AugmentConfig
from pipeline.data.pca_color import PCAColorAugmentation
from pipeline.data.random_affine import RandomAffine

__all__ = [
    "GEOMETRY", "PLACEMENTS", "AugmentConfig", "RandomAffine", "RandomShear", "build_augmentation",
]

# How the geometric parts are applied, part of the cached views' key: views made by the five
# separate Keras layers of earlier versions are not mistaken for views of ``RandomAffine``.
GEOMETRY = "one-affine"


@keras.saving.register_keras_serializable(package="pipeline")
class RandomShear(keras.layers.RandomShear):
    """Keras' ``RandomShear`` with a configuration that loads back.

    No longer built (``RandomAffine`` shears); kept registered so that models saved by
    earlier versions, with the five separate layers inside, still load.

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


def build_augmentation(
    config: AugmentConfig,
    pca: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int | None = None,
) -> keras.Sequential | None:
    """A ``Sequential`` of the enabled augmentation layers, or None when none is enabled.

    The geometric parts are one ``RandomAffine`` (a single resampling); the PCA colour shift
    follows it.

    ``pca`` holds the training set's RGB eigenvalues and eigenvectors; it is needed
    only when ``config.pca_color > 0``.
    """
    config.validate()
    layers: list[keras.layers.Layer] = []
    if (config.horizontal_flip or config.rotation or config.width_shift or config.height_shift
            or config.shear or config.zoom):
        layers.append(RandomAffine(
            rotation=config.rotation, width_shift=config.width_shift,
            height_shift=config.height_shift, shear=config.shear, zoom=config.zoom,
            horizontal_flip=config.horizontal_flip, fill_mode=config.fill_mode, seed=seed,
        ))
    if config.pca_color:
        if pca is None:
            raise ValueError("pca_color > 0 needs the RGB principal components of the training set")
        values, vectors = pca
        layers.append(
            PCAColorAugmentation(values.tolist(), vectors.tolist(), config.pca_color, seed=seed)
        )
    return keras.Sequential(layers, name="augmentation") if layers else None
