"""Grad-CAM points at the pixels that raised the class score, and draws it on the photo."""

import keras
import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.visualize.gradcam import gradcam
from pipeline.visualize.gradcam_plot import overlay_heatmap, write_gradcam


def brightness_model() -> keras.Model:
    """Score = mean brightness: a 1x1 conv averaging RGB, global pooling, a sigmoid unit."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(1, 1, name="brightness", kernel_initializer=keras.initializers.Constant(
        1 / 3), bias_initializer="zeros")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", kernel_initializer="ones")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def bright_corner():
    image = np.zeros((16, 16, 3), dtype="float32")
    image[:4, :4] = 255.0
    return image


def test_heatmap_for_the_bright_class_is_the_bright_patch(bright_corner):
    result = gradcam(brightness_model(), bright_corner)
    assert result.class_index == 1 and result.layer_name == "brightness"  # the last conv layer
    assert result.heatmap.shape == (16, 16)
    assert result.heatmap.max() == pytest.approx(1.0) and result.heatmap.min() >= 0
    np.testing.assert_allclose(result.heatmap[:4, :4], 1.0)
    np.testing.assert_allclose(result.heatmap[4:, :], 0.0)
    assert result.probabilities.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_precision_model_gets_the_same_heatmap(bright_corner, policy):
    # Its feature maps are bfloat16 or float16: the gradient is taken where they were computed.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = brightness_model()
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("brightness").compute_dtype != "float32"
    result = gradcam(model, bright_corner)
    assert result.class_index == 1
    np.testing.assert_allclose(result.heatmap[:4, :4], 1.0, atol=0.02)
    np.testing.assert_allclose(result.heatmap[4:, :], 0.0, atol=0.02)


def test_softmax_outputs_use_the_class_logit(bright_corner):
    # Logits (-brightness, +brightness): class 1 is "bright", class 0 "dark".
    model = brightness_model()
    dense = keras.layers.Dense(2, activation="softmax")
    softmax = keras.Model(model.input, dense(model.layers[-2].output))
    dense.set_weights([np.array([[-1.0, 1.0]], "float32"), np.zeros(2, "float32")])
    bright = gradcam(softmax, bright_corner)
    assert bright.class_index == 1
    np.testing.assert_allclose(bright.heatmap[:4, :4], 1.0)
    np.testing.assert_allclose(bright.heatmap[4:, :], 0.0)
    np.testing.assert_array_equal(gradcam(softmax, bright_corner, class_index=0).heatmap, 0.0)


def test_nothing_speaks_for_the_other_class(bright_corner):
    # Class 0's score is -logit: brightness only lowers it, so after the ReLU nothing is left.
    result = gradcam(brightness_model(), bright_corner, class_index=0)
    assert result.class_index == 0
    np.testing.assert_array_equal(result.heatmap, 0.0)


def test_layer_must_exist_and_have_feature_maps(bright_corner):
    model = brightness_model()
    with pytest.raises(PipelineError, match="no such layer"):
        gradcam(model, bright_corner, layer_name="block5_conv3")
    with pytest.raises(PipelineError, match="no feature maps"):
        gradcam(model, bright_corner, layer_name=model.layers[-1].name)


def test_overlay_keeps_the_photo_size_and_colours_hot_regions_red():
    photo = np.full((30, 40, 3), 128, dtype=np.uint8)
    heatmap = np.zeros((4, 4), dtype="float32")
    heatmap[0, 0] = 1.0
    blended = overlay_heatmap(photo, heatmap)
    assert blended.shape == photo.shape and blended.dtype == np.uint8
    assert blended[0, 0, 0] > blended[0, 0, 2]  # jet's hot end is red
    assert blended[-1, -1, 2] > blended[-1, -1, 0]  # and its cold end blue


def test_writes_one_png_per_image(tiny_run, synthetic_dataset, open_png):
    images = [synthetic_dataset / "test" / "cat" / "cat.24.jpg",
              synthetic_dataset / "test" / "dog" / "dog.24.jpg"]
    written = write_gradcam(tiny_run.path, images)
    assert [p.name for p in written] == ["gradcam-cat.24.png", "gradcam-dog.24.png"]
    assert all(p.parent == tiny_run.file("visualize") for p in written)
    for path in written:
        open_png(path, (900, 300))
    chosen = write_gradcam(tiny_run.path, images[:1], class_name="dog", layer_name="conv3")
    assert chosen[0].name == "gradcam-cat.24-dog.png"
    with pytest.raises(PipelineError, match="cat, dog"):
        write_gradcam(tiny_run.path, images[:1], class_name="horse")
