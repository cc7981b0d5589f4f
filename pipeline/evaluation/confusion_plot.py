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
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals != 0)
    side = 2.5 + 0.7 * len(class_names)
    figure = Figure(figsize=(side + 1.2, side), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the true class")
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45 if len(class_names) > 4 else 0)
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, f"{count}\n{shares[row, column]:.0%}", ha="center", va="center",
                  color="white" if shares[row, column] > 0.5 else "black", fontsize="small")
    axes.set_title(title, fontsize="medium")
    out = Path(out)
    with atomic.atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    return out
