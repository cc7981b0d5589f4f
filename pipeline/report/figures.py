"""The report's pictures as bytes: overlaid learning curves (PNG) and small photo thumbnails.

Returning bytes rather than writing files lets the HTML writer embed them as data URIs and
the Markdown writer put them beside its file, from the same drawing code. Figures are drawn
with ``matplotlib.figure.Figure``, which renders with Agg and never opens a window.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from pipeline.data.image_file import read_rgb_image
from pipeline.errors import PipelineError
from pipeline.report.model import Report, epoch_offset

THUMBNAIL_SIDE = 160  # pixels, longest side: recognisable, and ~5 KB as JPEG
GRADCAM_SIDE = 224  # pixels, longest side of an embedded Grad-CAM overlay
JPEG_QUALITY = 80


def curves_png(report: Report) -> bytes:
    """Accuracy and loss per epoch of every run on shared axes, as PNG bytes.

    Training is dashed, validation solid, one colour per run. A run with a ``parent``
    (fine-tuning) starts where its parent stopped, so the two read as one training; a
    dotted line marks where each continuation begins.
    """
    figure = Figure(figsize=(12, 4.8), layout="constrained")
    acc_axes, loss_axes = figure.subplots(1, 2)
    for index, run in enumerate(report.runs):
        color = f"C{index % 10}"
        offset = epoch_offset(report, run)
        for axes, metric in ((acc_axes, "accuracy"), (loss_axes, "loss")):
            for prefix, style, label in (("", "--", "training"), ("val_", "-", "validation")):
                values = list(run.history.get(prefix + metric, ()))
                if not values:
                    continue
                epochs = np.arange(1, len(values) + 1) + offset
                axes.plot(epochs, values, style, color=color, label=f"{run.name} {label}",
                          marker="o" if len(values) < 40 else None, markersize=3)
            if offset and run.history:
                axes.axvline(offset + 0.5, color=color, linestyle=":", linewidth=1)
    for axes, title in ((acc_axes, "Accuracy"), (loss_axes, "Loss")):
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        if axes.get_lines():
            axes.legend(fontsize="x-small")
    return _png(figure)


def photo_thumbnail(path: Path, side: int = THUMBNAIL_SIDE) -> bytes | None:
    """The photo shrunk to at most ``side`` pixels as JPEG bytes; None when it cannot be read."""
    try:
        image = read_rgb_image(path)
    except PipelineError:
        return None
    return _jpeg(image, side)


def overlay_thumbnail(picture: Path | bytes, side: int = GRADCAM_SIDE) -> bytes | None:
    """A Grad-CAM overlay (a file or encoded bytes) shrunk to ``side`` pixels, as JPEG bytes."""
    if isinstance(picture, bytes | bytearray):
        try:
            with Image.open(io.BytesIO(picture)) as image:
                return _jpeg(image.convert("RGB"), side)
        except (OSError, ValueError, SyntaxError):
            return None
    return photo_thumbnail(Path(picture), side)


def _jpeg(image: Image.Image, side: int) -> bytes:
    image = image.copy()
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=90, format="png")
    return buffer.getvalue()
