"""The one way every command reads an image file: upright 8-bit RGB, or one clear error.

``predict``, Grad-CAM, activations, kernels, the augmentation preview and contact sheets all
read photos through ``read_rgb_image``, so they agree with ``data prepare`` on what a photo
looks like: EXIF orientation applied, transparency on white, 16-bit greys scaled down (not
clipped to white, which is what Pillow's own ``convert`` does), and a decompression bomb
refused by its header before it is decoded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.data.images import opened_image, to_rgb
from pipeline.errors import PipelineError


def read_rgb_image(path: Path) -> Image.Image:
    """The image at ``path`` as a decoded, upright, 8-bit RGB ``PIL.Image``.

    Raises ``PipelineError`` naming the file when it is missing, unreadable, or too large.
    """
    path = Path(path)
    try:
        with opened_image(path) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            if "transparency" in upright.info and upright.mode in ("L", "RGB"):
                upright = upright.convert("RGBA")  # a colour key: to_rgb puts it on white
            return to_rgb(upright)
    except FileNotFoundError as error:
        raise PipelineError(f"{path}: no such file") from error
    except IsADirectoryError as error:
        raise PipelineError(f"{path}: is a folder, not an image file") from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as error:
        raise PipelineError(f"{path}: not a readable image ({error})") from error


def load_image_array(path: Path, image_size: int) -> np.ndarray:
    """Array (image_size, image_size, 3), float32 in 0..255, resized as in training."""
    import tensorflow as tf  # only here: contact sheets and kernels need no TensorFlow

    pixels = np.asarray(read_rgb_image(path), dtype="float32")
    # The same resize as keras.utils.image_dataset_from_directory, so predictions match training.
    resized = tf.image.resize(pixels, (image_size, image_size), method="bilinear")
    return resized.numpy().astype("float32")


def load_photo(path: Path, max_side: int) -> np.ndarray:
    """The photo as (H, W, 3) uint8, shrunk (aspect kept) to at most ``max_side`` pixels."""
    image = read_rgb_image(path)
    image.thumbnail((max_side, max_side))
    return np.asarray(image)
