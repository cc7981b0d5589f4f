"""Tiny generated images for the visualisation tests (never real photos)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def write_image_file() -> Callable[..., Path]:
    """``write_image_file(path, size=(w, h))``: a noisy RGB image in the format of its suffix."""

    def write(path: Path, size: tuple[int, int] = (48, 40)) -> Path:
        noise = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noise).save(path)
        return path

    return write
