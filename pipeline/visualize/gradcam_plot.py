"""Grad-CAM pictures: the image as the model saw it, the coarse heatmap, and the overlay.

The overlay is drawn on the original photo (up to ``OVERLAY_SIDE`` pixels), with the
heatmap stretched the same way the photo was stretched to the model's square input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from pipeline.data.image_file import load_image_array, load_photo
from pipeline.errors import PipelineError
from pipeline.evaluation.saved_model import class_index, load_run_model
from pipeline.system import atomic
from pipeline.system.paths import output_folder
from pipeline.visualize.gradcam import GradCam, gradcam

OVERLAY_SIDE = 512  # longest side of the overlay, pixels
HEATMAP_ALPHA = 0.4  # Chollet's blend: 40 % heatmap over the photo


def overlay_heatmap(photo: np.ndarray, heatmap: np.ndarray, alpha: float = HEATMAP_ALPHA):
    """Blend a 0..1 heatmap, resized to the photo (H, W, 3 uint8) and coloured with jet."""
    height, width = photo.shape[:2]
    levels = Image.fromarray(np.uint8(np.clip(heatmap, 0, 1) * 255))
    resized = np.asarray(levels.resize((width, height), Image.BILINEAR), dtype=np.float32) / 255
    coloured = matplotlib.colormaps["jet"](resized)[..., :3] * 255.0
    blended = (1.0 - alpha) * photo.astype(np.float32) + alpha * coloured
    return blended.clip(0, 255).astype(np.uint8)


def write_gradcam(
    run_path: str | Path,
    image_paths: Sequence[str | Path],
    *,
    class_name: str | None = None,
    layer_name: str | None = None,
    out_dir: str | Path | None = None,
    which: str = "best",
) -> list[Path]:
    """One PNG per image (default ``<run>/visualize/gradcam-<image>[-<class>].png``)."""
    if not image_paths:
        raise PipelineError("give at least one image")
    if out_dir is not None:
        output_folder(out_dir, "out_dir")  # refused before the model is loaded
    loaded = load_run_model(run_path, which)
    chosen = class_index(loaded.class_names, class_name) if class_name else None
    out = output_folder(out_dir if out_dir else loaded.run.file("visualize"), "out_dir")
    written = []
    for image_path in image_paths:
        image_path = Path(image_path)
        pixels = load_image_array(image_path, loaded.image_size)
        result = gradcam(loaded.model, pixels, chosen, layer_name)
        suffix = f"-{class_name}" if class_name else ""
        path = out / f"gradcam-{_safe(image_path.stem)}{suffix}.png"
        written.append(plot_gradcam(result, pixels, image_path, loaded.class_names, path))
    return written


def plot_gradcam(
    result: GradCam, pixels: np.ndarray, image_path: Path, class_names: Sequence[str], out: Path
) -> Path:
    """Three panels: model input, heatmap on the layer's grid, overlay on the photo."""
    predicted = int(np.argmax(result.probabilities))
    shown = class_names[result.class_index]
    figure = Figure(figsize=(13, 4.8), layout="constrained")
    seen, coarse, overlaid = figure.subplots(1, 3)
    seen.imshow(pixels.clip(0, 255).astype(np.uint8))
    seen.set_title(f"input ({pixels.shape[0]} px)")
    coarse.imshow(result.heatmap, cmap="jet", vmin=0, vmax=1, interpolation="nearest")
    rows, cols = result.heatmap.shape
    coarse.set_title(f"Grad-CAM of {result.layer_name} ({rows}x{cols})")
    overlaid.imshow(overlay_heatmap(load_photo(image_path, OVERLAY_SIDE), result.heatmap))
    overlaid.set_title(f"where the model sees '{shown}'")
    for axes in (seen, coarse, overlaid):
        axes.set_axis_off()
    figure.suptitle(
        f"{image_path.name}: predicted {class_names[predicted]} "
        f"({result.probabilities[predicted]:.1%}); heatmap for {shown} "
        f"({result.probabilities[result.class_index]:.1%})"
    )
    out = Path(out)
    with atomic.atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)
