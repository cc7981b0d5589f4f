"""A contact sheet: thumbnails of image files with a caption under each, as one PNG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from pipeline.data.image_file import load_photo
from pipeline.errors import PipelineError
from pipeline.system import atomic

THUMBNAIL_SIDE = 160  # pixels; enough to recognise a cat, small enough for 16 on one sheet
CELL_WIDTH, CELL_HEIGHT = 2.6, 2.9  # inches: a thumbnail and its two-line caption
TITLE_HEIGHT = 0.4  # inches above the grid for the sheet's title
CAPTION_HEIGHT = 0.45  # inches above a thumbnail for its two-line caption


def write_contact_sheet(
    items: Sequence[tuple[Path, str]],
    out: Path,
    *,
    title: str = "",
    columns: int = 4,
    empty_text: str = "nothing to show",
) -> Path:
    """Write ``(image file, caption)`` pairs as a grid of thumbnails to the PNG ``out``.

    A file that cannot be read shows as a grey square, so one bad file never hides the rest.
    """
    count = max(len(items), 1)
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    # A fixed grid with room for a two-line caption above each thumbnail, rather than
    # matplotlib's constrained layout, which measured every caption's box and took 0.4 of
    # the 0.85 s a sheet of 16 photos cost.
    height = CELL_HEIGHT * rows + TITLE_HEIGHT + 0.2
    figure = Figure(figsize=(CELL_WIDTH * columns, height))
    grid = np.atleast_1d(figure.subplots(
        rows, columns, squeeze=False,
        gridspec_kw=dict(left=0.02, right=0.98, bottom=0.1 / height,
                         top=1 - (TITLE_HEIGHT + CAPTION_HEIGHT) / height, wspace=0.08,
                         hspace=0.22),
    )).ravel()
    for axes in grid:
        axes.set_axis_off()
    if not items:
        grid[0].text(0.5, 0.5, empty_text, ha="center", va="center", fontsize="large")
    for axes, (path, caption) in zip(grid, items, strict=False):
        axes.imshow(_thumbnail(path))
        axes.set_title(caption, fontsize="small")
    if title:
        figure.suptitle(title, y=1 - 0.08 / height, va="top")
    out = Path(out)
    with atomic.atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    return out


def _thumbnail(path: Path) -> np.ndarray:
    try:
        return load_photo(path, THUMBNAIL_SIDE)
    except PipelineError:
        return np.full((THUMBNAIL_SIDE, THUMBNAIL_SIDE, 3), 128, dtype=np.uint8)
