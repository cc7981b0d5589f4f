"""Tile many small images into one array, and save it as a titled PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from pipeline.system import atomic


def tile(images: np.ndarray, columns: int, gap: int = 1) -> np.ndarray:
    """Lay ``images`` (N, h, w) or (N, h, w, 3) out in rows of ``columns``, ``gap`` pixels apart.

    Gaps and unused cells are NaN, which the PNG writer shows as white.
    """
    images = np.asarray(images, dtype=np.float32)
    count, height, width = images.shape[:3]
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    shape = (rows * (height + gap) - gap, columns * (width + gap) - gap, *images.shape[3:])
    out = np.full(shape, np.nan, dtype=np.float32)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        out[top : top + height, left : left + width] = image
    return out


def save_mosaic(
    array: np.ndarray, out: Path, title: str, cmap: str = "viridis", max_inches: float = 16.0
) -> Path:
    """Write a tiled array as a PNG with ``title``; grey levels use ``cmap``, RGB is in 0..255.

    The figure is sized to the mosaic so small feature maps are enlarged, not squeezed.
    """
    height, width = array.shape[:2]
    longest = max(width, height)
    # Long side: at least 6 inches (tiny maps get enlarged), at most max_inches.
    scale = min(max_inches, max(6.0, longest / 50)) / longest
    figure = Figure(figsize=(width * scale + 0.4, height * scale + 0.8), layout="constrained")
    axes = figure.subplots()
    axes.set_axis_off()
    if array.ndim == 2:
        colours = matplotlib.colormaps[cmap].with_extremes(bad="white")
        axes.imshow(np.ma.masked_invalid(array), cmap=colours, vmin=0, vmax=255,
                    interpolation="nearest")
    else:
        rgb = np.where(np.isnan(array), 255.0, array).clip(0, 255).astype(np.uint8)
        axes.imshow(rgb, interpolation="nearest")
    axes.set_title(title, fontsize="medium")
    out = Path(out)
    with atomic.atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    return out
