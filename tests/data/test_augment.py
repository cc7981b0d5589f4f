"""Augmentation layers: the classic set, each part switchable, active only in training."""

import keras
import numpy as np
import pytest

from pipeline.data.augment import AugmentConfig, RandomAffine, RandomShear, build_augmentation
from pipeline.errors import PipelineError


def _images(seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (4, 32, 32, 3)).astype("float32")


def test_classic_set_is_on_by_default_and_each_part_can_be_turned_off():
    (geometry,) = build_augmentation(AugmentConfig()).layers
    assert isinstance(geometry, RandomAffine)  # the five parts in one resampling
    assert (geometry.rotation, geometry.width_shift, geometry.height_shift, geometry.shear,
            geometry.zoom, geometry.horizontal_flip) == (40, 0.2, 0.2, 0.2, 0.2, True)
    fewer = build_augmentation(AugmentConfig(rotation=0, shear=0, horizontal_flip=False))
    (geometry,) = fewer.layers
    assert (geometry.rotation, geometry.shear, geometry.horizontal_flip) == (0, 0, False)
    flip_only = build_augmentation(AugmentConfig(0, 0, 0, 0, 0, True))
    assert flip_only.layers[0].horizontal_flip and flip_only.layers[0].zoom == 0
    nothing = AugmentConfig(0, 0, 0, 0, 0, False)
    assert build_augmentation(nothing) is None


def test_augmentation_changes_images_in_training_only():
    layer = build_augmentation(AugmentConfig(), seed=1)
    images = _images()
    assert not np.allclose(np.asarray(layer(images, training=True)), images)
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)


def test_pca_color_needs_the_training_set_components():
    with pytest.raises(ValueError, match="principal components"):
        build_augmentation(AugmentConfig(pca_color=0.1))
    pca = (np.array([300.0, 20.0, 5.0]), np.eye(3))
    model = build_augmentation(AugmentConfig(pca_color=0.1), pca)
    assert type(model.layers[-1]).__name__ == "PCAColorAugmentation"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("rotation", -1.0, "`rotation` -1.0: must be a finite number, 0 or more"),
     ("zoom", -0.1, "`zoom` -0.1"), ("rotation", 400.0, "in degrees, at most 180"),
     ("zoom", 1.5, r"`zoom` 1.5: is a fraction of the image, at most 1"),
     ("width_shift", 2.0, "`width_shift` 2.0"), ("height_shift", 1.01, "`height_shift` 1.01"),
     ("fill_mode", "mirror", "`fill_mode` 'mirror'")],
)
def test_bad_settings_are_named_by_their_field(field, value, message):
    config = AugmentConfig(**{field: value})
    with pytest.raises(PipelineError, match=message):
        build_augmentation(config)


def test_augmentation_trains_inside_a_model_is_off_at_inference_and_saved_with_it(tmp_path):
    inputs = keras.Input((32, 32, 3))
    augmentation = build_augmentation(
        AugmentConfig(pca_color=0.1), (np.ones(3), np.eye(3)), seed=0
    )
    outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(augmentation(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "mse")
    images = _images()
    history = model.fit(images, np.ones((4, 1)), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()

    # At inference the augmentation is the identity: the model is Dense(mean colour).
    kernel, bias = model.layers[-1].get_weights()
    expected = images.mean(axis=(1, 2)) @ kernel + bias
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, rtol=1e-4)

    model.save(tmp_path / "augmented.keras")
    loaded = keras.models.load_model(tmp_path / "augmented.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, rtol=1e-4)
    names = [type(layer).__name__ for layer in loaded.get_layer("augmentation").layers]
    assert names == ["RandomAffine", "PCAColorAugmentation"]


def test_a_model_saved_with_the_five_layers_of_earlier_versions_still_loads(tmp_path):
    inputs = keras.Input((32, 32, 3))
    old = keras.Sequential([
        keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(40 / 360),
        keras.layers.RandomTranslation(0.2, 0.2), RandomShear(0.2, 0.2),
        keras.layers.RandomZoom(0.2, 0.2)], name="augmentation")
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(old(inputs)))
    model.save(tmp_path / "old.keras")
    loaded = keras.models.load_model(tmp_path / "old.keras")
    images = _images()
    np.testing.assert_allclose(loaded.predict(images, verbose=0), images.mean(axis=(1, 2)),
                               rtol=1e-5)
    assert not np.allclose(np.asarray(loaded.get_layer("augmentation")(images, training=True)),
                           images)
