"""Hand-made 3x3 kernels applied to a photo: what a convolution does before any learning.

Each kernel is convolved with every colour channel on its own (edges padded by repeating
the border pixels, so the output keeps the image's size); results are clipped to 0..255
as an image viewer would. A trained convnet's first layer learns kernels much like these.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from pipeline.data import image_file
from pipeline.errors import PipelineError
from pipeline.system import atomic
from pipeline.system.paths import output_file

# name -> (integer weights, divisor): the kernel is weights / divisor.
KERNELS: dict[str, tuple[tuple[tuple[int, ...], ...], int]] = {
    "identity": (((0, 0, 0), (0, 1, 0), (0, 0, 0)), 1),
    "edge detection": (((0, -1, 0), (-1, 4, -1), (0, -1, 0)), 1),
    "edge detection (diagonals too)": (((-1, -1, -1), (-1, 8, -1), (-1, -1, -1)), 1),
    "sharpen": (((0, -1, 0), (-1, 5, -1), (0, -1, 0)), 1),
    "box blur": (((1, 1, 1), (1, 1, 1), (1, 1, 1)), 9),
    "Gaussian blur": (((1, 2, 1), (2, 4, 2), (1, 2, 1)), 16),
}


def kernel(name: str) -> np.ndarray:
    """The 3x3 float32 kernel called ``name`` (a key of ``KERNELS``)."""
    weights, divisor = KERNELS[name]
    return np.asarray(weights, dtype=np.float32) / divisor


WORKING_SIDE = 256  # photos are shrunk to this so a 3x3 kernel's effect is visible


def convolve3x3(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Convolve (H, W, C) ``image`` with 3x3 ``weights`` per channel, same size, float32.

    True convolution (the kernel is flipped); every kernel here is symmetric, so it equals
    the cross-correlation Keras' ``Conv2D`` computes.
    """
    image = np.asarray(image, dtype=np.float32)
    flipped = np.asarray(weights, dtype=np.float32)[::-1, ::-1]
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    height, width = image.shape[:2]
    out = np.zeros_like(image)
    for dy in range(3):
        for dx in range(3):
            out += flipped[dy, dx] * padded[dy : dy + height, dx : dx + width]
    return out


def load_photo(path: Path, side: int = WORKING_SIDE) -> np.ndarray:
    """The photo as (H, W, 3) float32 0..255, shrunk to ``side`` on its longest side."""
    return image_file.load_photo(path, side).astype(np.float32)


def write_kernel_effects(image_path: str | Path, out: str | Path | None = None,
                         size: int = WORKING_SIDE) -> Path:
    """Write the photo through each kernel side by side (default ``models/kernels-<image>.png``;
    an existing folder ``out`` gets that file name inside it)."""
    image_path = Path(image_path)
    if size < 8:
        raise PipelineError(f"`size` {size}: must be at least 8 pixels")
    path = output_file(out, f"kernels-{image_path.stem}.png", "models")
    photo = load_photo(image_path, size)
    figure = Figure(figsize=(12, 9.5), layout="constrained")
    for axes, name in zip(figure.subplots(2, 3).ravel(), KERNELS, strict=True):
        result = convolve3x3(photo, kernel(name)).clip(0, 255).astype(np.uint8)
        axes.imshow(result)
        axes.set_title(f"{name}\n{_kernel_text(name)}", fontsize="small", family="monospace")
        axes.set_axis_off()
    figure.suptitle(f"3x3 kernels applied to {image_path.name} ({photo.shape[1]}x{photo.shape[0]})")
    with atomic.atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    return path


def _kernel_text(name: str) -> str:
    weights, divisor = KERNELS[name]
    rows = " | ".join(" ".join(f"{w:2d}" for w in row) for row in weights)
    return f"[{rows}]" + (f" / {divisor}" if divisor != 1 else "")
