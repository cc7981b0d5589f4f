"""A grid of augmented versions of one image, to see what the model will be shown."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from pipeline.data.augment import AugmentConfig, build_augmentation
from pipeline.data.defaults import DEFAULT_SEED
from pipeline.data.image_file import load_image_array
from pipeline.data.pca_color import rgb_principal_components
from pipeline.errors import PipelineError
from pipeline.system import atomic
from pipeline.system.paths import output_file

# Larger previews show nothing more and cost memory: a 4096 px square batch of 9 is 1.8 GB.
MAX_PREVIEW_SIZE = 1024
MAX_PREVIEW_COUNT = 48


def plot_augmentations(
    image_path: Path,
    out: Path | None,
    config: AugmentConfig,
    count: int = 8,
    image_size: int = 150,
    seed: int = DEFAULT_SEED,
) -> Path:
    """Write the original image and ``count`` augmented versions of it as one PNG grid.

    PCA colour augmentation, when enabled, uses this image's own RGB components
    (the training set's are used in training). ``out`` None writes
    ``models/augmentation-<image>.png``; an existing folder gets that file name inside it.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PREVIEW_COUNT:
        raise PipelineError(f"`count` {count!r}: must be a whole number from 1 to "
                            f"{MAX_PREVIEW_COUNT}")
    if (isinstance(image_size, bool) or not isinstance(image_size, int)
            or not 1 <= image_size <= MAX_PREVIEW_SIZE):
        raise PipelineError(f"`image_size` {image_size!r}: must be a whole number of pixels "
                            f"from 1 to {MAX_PREVIEW_SIZE}")
    config.validate()
    image_path = Path(image_path)
    out = output_file(out, f"augmentation-{image_path.stem}.png", "models")
    image = load_image_array(image_path, image_size)
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
