"""The confusion matrix as a picture: counts in each cell, shaded by row share.

A count per cell makes hundreds of text artists (289 for 17 classes, 2,500 for 50).
``savefig`` with a layout engine draws the whole figure twice (once to lay it out), and
constrained layout measured every cell's text though all lie inside the axes: with the texts
left out of the layout and one draw on an Agg canvas, a 17-class matrix takes 0.35 s, not
0.5-0.8 s, for the same picture pixel for pixel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from pipeline.system import atomic

DPI = 100
PNG_COMPRESSION = 6  # zlib level; flat colour compresses well, and level 1 saved only 0.01 s


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: tuple[str, ...], out: Path, title: str = ""
) -> Path:
    """Write a PNG: rows are true classes, columns predicted; colour is the share of the row.

    Shading by row share (recall) rather than count keeps a small class readable.
    """
    matrix = np.asarray(matrix)
    count = len(class_names)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals != 0)
    # The figure grows with the classes so a cell keeps room for its text; from 8 classes on
    # a cell shows its count only (the colour is the share), its labels in a smaller font.
    compact = count >= 8
    side = 2.5 + (0.55 if compact else 0.7) * count
    figure = Figure(figsize=(side + 1.2, side), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the true class", shrink=0.8)
    ticks = np.arange(count)
    label_size = "small" if compact else "medium"
    if count > 4:
        axes.set_xticks(ticks, class_names, rotation=60 if compact else 45, ha="right",
                        rotation_mode="anchor", fontsize=label_size)
    else:
        axes.set_xticks(ticks, class_names)
    axes.set_yticks(ticks, class_names, fontsize=label_size)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    for (row, column), value in np.ndenumerate(matrix):
        text = f"{value}" if compact else f"{value}\n{shares[row, column]:.0%}"
        axes.text(column, row, text, ha="center", va="center",
                  color="white" if shares[row, column] > 0.5 else "black",
                  fontsize="small", in_layout=False)
    axes.set_title(title, fontsize="medium")
    return _save_png(figure, Path(out))


def _save_png(figure: Figure, out: Path) -> Path:
    """Draw ``figure`` once (laying it out on the way) and write it as an RGB PNG."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3]
    with atomic.atomic_path(out) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG", compress_level=PNG_COMPRESSION)
    return out
