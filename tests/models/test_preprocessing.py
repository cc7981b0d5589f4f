"""ImagePreprocessing: the preprocessing of keras.applications, as a layer saved with the model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras.applications import imagenet_utils

from pipeline.models.preprocessing import MODES, ImagePreprocessing


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype("float32")


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf"])
def test_matches_keras_preprocess_input(images, mode):
    expected = imagenet_utils.preprocess_input(images.copy(), mode=mode)
    got = keras.ops.convert_to_numpy(ImagePreprocessing(mode)(images))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_none_leaves_images_alone(images):
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ImagePreprocessing("none")(images)),
                                  images)


def test_lite_centres_on_127_and_divides_by_128():
    pixels = np.array([[[[0.0, 127.0, 255.0]]]], "float32")
    out = keras.ops.convert_to_numpy(ImagePreprocessing("lite")(pixels))[0, 0, 0]
    np.testing.assert_allclose(out, [-127 / 128, 0.0, 1.0], rtol=1e-6)


def test_caffe_swaps_rgb_to_bgr():
    red = np.zeros((1, 1, 1, 3), "float32")
    red[..., 0] = 255.0
    out = keras.ops.convert_to_numpy(ImagePreprocessing("caffe")(red))[0, 0, 0]
    np.testing.assert_allclose(out, [-103.939, -116.779, 255.0 - 123.68], rtol=1e-5)


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        ImagePreprocessing("imagenet")


def test_saved_model_keeps_the_mode_and_loads_in_safe_mode(tmp_path, images):
    inputs = keras.Input((5, 5, 3))
    model = keras.Model(inputs, ImagePreprocessing("torch", name="preprocess")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.get_layer("preprocess").mode == "torch"
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
    assert set(MODES) == {"caffe", "torch", "tf", "lite", "none"}
