"""AlexNet PCA colour augmentation: components from data, a per-image shift along them."""

import keras
import numpy as np

from pipeline.data.pca_color import PCAColorAugmentation, rgb_principal_components


def test_principal_components_find_the_dominant_colour_axis():
    rng = np.random.default_rng(0)
    # Pixels vary mostly along (1, 1, 1)/sqrt(3): brightness.
    t = rng.normal(0, 40, (2, 64, 64, 1))
    images = 128 + t * np.ones(3) + rng.normal(0, 2, (2, 64, 64, 3))
    values, vectors = rgb_principal_components([images])
    assert values[0] > 100 * values[1] >= 0
    np.testing.assert_allclose(np.abs(vectors[:, 0]), np.full(3, 1 / np.sqrt(3)), atol=0.01)


def test_layer_shifts_each_image_by_one_colour_offset_in_training_only():
    layer = PCAColorAugmentation([400.0, 10.0, 1.0], np.eye(3).tolist(), stddev=0.5, seed=3)
    images = np.full((3, 8, 8, 3), 100.0, dtype="float32")
    out = np.asarray(layer(images, training=True))
    shift = out - images
    # One offset per image, the same at every pixel, largest along the first component.
    np.testing.assert_allclose(shift, shift[:, :1, :1, :] * np.ones_like(shift), atol=1e-4)
    assert np.abs(shift[..., 0]).mean() > np.abs(shift[..., 2]).mean()
    assert not np.allclose(shift[0], shift[1])
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)


def test_layer_survives_a_keras_round_trip(tmp_path):
    inputs = keras.Input((8, 8, 3))
    layer = PCAColorAugmentation([3.0, 2.0, 1.0], np.eye(3).tolist(), stddev=0.2, seed=1)
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    restored = loaded.layers[-1]
    assert restored.get_config()["eigenvalues"] == [3.0, 2.0, 1.0]
    assert restored.stddev == 0.2
