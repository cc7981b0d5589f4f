"""Test-time augmentation: average a model's predictions over fixed views of each image.

A classifier trained with flips and zooms has seen each photo in many framings; at test
time, averaging its probabilities over a few of those framings smooths out the ones
where a single framing is unlucky. The views are deterministic (no randomness at test
time, so a result can be repeated): the image, its mirror, a centre crop, then the four
corner crops, each crop also mirrored. Crops keep ``CROP_FRACTION`` of each side and are
resized back to the model's input size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from keras import ops

from pipeline.errors import PipelineError

CROP_FRACTION = 0.875
View = Callable[[np.ndarray], np.ndarray]


def _crop(row: float, col: float) -> View:
    """A view cropping ``CROP_FRACTION`` of each side at relative position (row, col) in 0..1."""

    def view(images: np.ndarray) -> np.ndarray:
        height, width = images.shape[1:3]
        crop_h, crop_w = round(height * CROP_FRACTION), round(width * CROP_FRACTION)
        top, left = round((height - crop_h) * row), round((width - crop_w) * col)
        window = images[:, top:top + crop_h, left:left + crop_w]
        return ops.convert_to_numpy(ops.image.resize(window, (height, width)))

    return view


def _mirror(view: View) -> View:
    return lambda images: view(images)[:, :, ::-1]


def _identity(images: np.ndarray) -> np.ndarray:
    return images


_CROPS = [_crop(0.5, 0.5), _crop(0, 0), _crop(0, 1), _crop(1, 0), _crop(1, 1)]
VIEWS: tuple[View, ...] = (
    _identity,
    _mirror(_identity),
    *(view for crop in _CROPS for view in (crop, _mirror(crop))),
)
MAX_VIEWS = len(VIEWS)


def check_views(views: int) -> None:
    if not 1 <= views <= MAX_VIEWS:
        raise PipelineError(
            f"`tta` {views}: give 1 (no test-time augmentation) to {MAX_VIEWS} views "
            "(image, mirror, centre crop, four corner crops, each mirrored)"
        )


def tta_images(images: np.ndarray, views: int) -> list[np.ndarray]:
    """The first ``views`` views of a batch ``(B, H, W, 3)`` of raw images, each the same shape."""
    check_views(views)
    images = np.asarray(images, dtype="float32")
    return [VIEWS[index](images) for index in range(views)]


def predict_with_tta(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray,
                     views: int) -> np.ndarray:
    """Mean of ``predict`` over the views of a batch (``predict``: batch -> probabilities)."""
    outputs = [np.asarray(predict(batch), dtype="float64") for batch in tta_images(images, views)]
    return np.mean(outputs, axis=0).astype("float32")
