"""The confusion matrix as a picture: counts in each cell, shaded by row share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from pipeline.system import atomic


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
    figure = Figure(figsize=(side + 1.2, side), layout="constrained")
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
                  fontsize="small")
    axes.set_title(title, fontsize="medium")
    out = Path(out)
    with atomic.atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    return out
