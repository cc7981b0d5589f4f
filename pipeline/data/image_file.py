"""Load one image file the way the models see it: RGB, resized, float32 0..255."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.errors import PipelineError


def load_image_array(path: Path, image_size: int) -> np.ndarray:
    """Array (image_size, image_size, 3), float32 in 0..255, resized as in training.

    EXIF orientation is applied and any mode (grayscale, CMYK, palette, alpha) becomes RGB.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                background = Image.new("RGB", image.size, (255, 255, 255))
                background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
                image = background
            pixels = np.asarray(image.convert("RGB"), dtype="float32")
    except FileNotFoundError as error:
        raise PipelineError(f"{path}: no such file") from error
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise PipelineError(f"{path}: not a readable image ({error})") from error
    # The same resize as keras.utils.image_dataset_from_directory, so predictions match training.
    resized = tf.image.resize(pixels, (image_size, image_size), method="bilinear")
    return resized.numpy().astype("float32")
