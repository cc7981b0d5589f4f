"""A grid of augmented versions of one image, to see what the model will be shown."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from pipeline import atomic
from pipeline.data.augment import AugmentConfig, build_augmentation
from pipeline.data.image_file import load_image_array
from pipeline.data.pca_color import rgb_principal_components
from pipeline.errors import PipelineError


def plot_augmentations(
    image_path: Path,
    out: Path,
    config: AugmentConfig,
    count: int = 8,
    image_size: int = 150,
    seed: int = 1337,
) -> Path:
    """Write the original image and ``count`` augmented versions of it as one PNG grid.

    PCA colour augmentation, when enabled, uses this image's own RGB components
    (the training set's are used in training).
    """
    if count < 1:
        raise PipelineError(f"--count must be at least 1, got {count}")
    image = load_image_array(Path(image_path), image_size)
    pca = rgb_principal_components([image]) if config.pca_color else None
    augmentation = build_augmentation(config, pca, seed=seed)
    if augmentation is None:
        raise PipelineError("every augmentation is turned off; nothing to show")
    batch = np.repeat(image[None].astype("float32"), count, axis=0)
    augmented = np.asarray(augmentation(batch, training=True))

    tiles = [image, *augmented]
    columns = min(len(tiles), 3 if len(tiles) <= 9 else 5)
    rows = math.ceil(len(tiles) / columns)
    figure = Figure(figsize=(3 * columns, 3 * rows), layout="constrained")
    for index, axes in enumerate(figure.subplots(rows, columns, squeeze=False).flat):
        axes.axis("off")
        if index < len(tiles):
            axes.imshow(np.clip(tiles[index], 0, 255).astype("uint8"))
            axes.set_title("original" if index == 0 else f"augmented {index}", fontsize=9)
    with atomic.atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=80, format="png")
    return Path(out)
