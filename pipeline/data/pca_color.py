"""AlexNet-style PCA colour augmentation: shift every pixel along the RGB principal axes."""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np
from keras import ops

# Pixels sampled per image when estimating the RGB covariance; plenty for a 3x3 matrix.
PIXELS_PER_IMAGE = 2048


def rgb_principal_components(
    images: Iterable[np.ndarray], max_images: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (3,) and eigenvectors (3, 3; columns) of the RGB covariance of ``images``.

    ``images`` yields arrays of shape (H, W, 3) or (B, H, W, 3) in the 0..255 scale the
    models take. A random sample of pixels from each image keeps this cheap.
    """
    rng = np.random.default_rng(seed)
    samples: list[np.ndarray] = []
    seen = 0
    for batch in images:
        batch = np.asarray(batch, dtype=np.float64)
        if batch.ndim == 3:
            batch = batch[None]
        for image in batch:
            pixels = image.reshape(-1, 3)
            take = min(PIXELS_PER_IMAGE, len(pixels))
            samples.append(pixels[rng.choice(len(pixels), size=take, replace=False)])
            seen += 1
            if seen >= max_images:
                break
        if seen >= max_images:
            break
    if not samples:
        raise ValueError("no images to compute RGB principal components from")
    pixels = np.concatenate(samples)
    covariance = np.cov(pixels, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    return eigenvalues[order].clip(min=0.0), eigenvectors[:, order]


@keras.saving.register_keras_serializable(package="pipeline")
class PCAColorAugmentation(keras.layers.Layer):
    """Adds ``V @ (alpha * lambda)`` to every pixel of an image, ``alpha ~ N(0, stddev)``.

    ``lambda`` and ``V`` are the eigenvalues and eigenvectors of the RGB covariance of
    the training set (``rgb_principal_components``). One ``alpha`` (3 values) is drawn
    per image, so an image's colours shift together, as lighting would change them
    (Krizhevsky et al., 2012, section 4.1). Active only when ``training=True``.

    Args:
        eigenvalues: 3 floats, variance along each principal axis (0..255 scale).
        eigenvectors: 3x3 nested list, the principal axes as columns.
        stddev: standard deviation of ``alpha``; the paper uses 0.1.
        seed: seed of the random draws.

    Input shape: (batch, height, width, 3), values 0..255.
    Output shape: same as input.
    """

    def __init__(
        self,
        eigenvalues: list[float],
        eigenvectors: list[list[float]],
        stddev: float = 0.1,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        values = np.asarray(eigenvalues, dtype="float32")
        vectors = np.asarray(eigenvectors, dtype="float32")
        if values.shape != (3,) or vectors.shape != (3, 3):
            raise ValueError("eigenvalues must have 3 entries and eigenvectors be 3x3")
        if stddev < 0:
            raise ValueError(f"stddev must be >= 0, got {stddev}")
        self.eigenvalues = values.tolist()
        self.eigenvectors = vectors.tolist()
        self.stddev = float(stddev)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or self.stddev == 0:
            return images
        batch = ops.shape(images)[0]
        alpha = keras.random.normal((batch, 3), stddev=self.stddev, seed=self.seed_generator)
        weighted = alpha * ops.convert_to_tensor(self.eigenvalues, dtype="float32")
        shift = ops.matmul(weighted, ops.transpose(ops.convert_to_tensor(self.eigenvectors)))
        shift = ops.cast(ops.reshape(shift, (batch, 1, 1, 3)), images.dtype)
        return images + shift

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            eigenvalues=self.eigenvalues,
            eigenvectors=self.eigenvectors,
            stddev=self.stddev,
            seed=self.seed,
        )
        return config
