"""Test-time augmentation: deterministic views of a batch, predictions averaged over them."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.tta import MAX_VIEWS, predict_with_tta, tta_images


def _left_half_brightness() -> keras.Model:
    """A real Keras model that sees only the left half of a 16x16 image: mirror-sensitive."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Cropping2D(((0, 0), (0, 8)))(inputs)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Lambda(lambda t: t[:, :1] / 255.0)(outputs))


def _images() -> np.ndarray:
    images = np.zeros((2, 16, 16, 3), dtype="float32")
    images[0, :, :8] = 255.0  # left half white
    images[1, :, 8:] = 255.0  # right half white
    return images


def test_one_view_is_the_plain_prediction():
    model = _left_half_brightness()
    images = _images()
    plain = model.predict_on_batch(images)
    np.testing.assert_allclose(predict_with_tta(model.predict_on_batch, images, 1), plain)


def test_two_views_average_the_image_and_its_mirror():
    model = _left_half_brightness()
    result = predict_with_tta(model.predict_on_batch, _images(), 2)
    # Each image is white on one half: the image and its mirror together average to 0.5.
    np.testing.assert_allclose(result[:, 0], [0.5, 0.5], atol=1e-6)
    plain = model.predict_on_batch(_images())[:, 0]
    np.testing.assert_allclose(plain, [1.0, 0.0], atol=1e-6)  # without TTA: far apart


def test_crops_cut_the_border_and_keep_the_shape():
    image = np.zeros((1, 16, 16, 3), dtype="float32")
    image[:, 1:15, 1:15] = 200.0  # a frame of black, one pixel wide
    views = tta_images(image, MAX_VIEWS)
    assert len(views) == MAX_VIEWS
    assert all(view.shape == image.shape for view in views)
    assert image[0, 0, 0, 0] == 0.0
    centre = views[2]
    assert centre[0, 0, 0, 0] > 100.0  # the centre crop (87.5%) leaves the black frame out
    top_left = views[4]
    assert top_left[0, -1, -1, 0] > 100.0 and top_left[0, 0, 0, 0] < 100.0


@pytest.mark.parametrize("views", [0, MAX_VIEWS + 1])
def test_view_count_out_of_range_names_the_field(views):
    with pytest.raises(PipelineError, match=f"`tta` {views}"):
        tta_images(_images(), views)
