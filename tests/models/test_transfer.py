"""Transfer models: one flat graph (raw images in), a frozen base, and thawing its top."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.data.augment import AugmentConfig, build_augmentation
from pipeline.errors import PipelineError
from pipeline.models.bases import get_base
from pipeline.models.heads import HeadOptions
from pipeline.models.transfer import (
    base_layers,
    build_transfer_model,
    replace_augmentation,
    split_at,
    trainable_layer_names,
    unfreeze,
)
from pipeline.models.weights import WeightsChoice

VGG16 = get_base("vgg16")
NO_WEIGHTS = WeightsChoice("none", "caffe", None, None, "random")
HEAD = ["head_dense", "predictions"]


def vgg16_model(size: int = 32, **kwargs) -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_transfer_model(VGG16, NO_WEIGHTS, size, 2, "flatten", HeadOptions(dense=8),
                                **kwargs)


def images(count: int = 2, size: int = 32) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 255, (count, size, size, 3)).astype("float32")


def test_flat_model_takes_raw_images_and_keeps_keras_layer_names(tmp_path):
    model = vgg16_model()
    names = [layer.name for layer in model.layers]
    assert names[:3] == ["image", "preprocess", "block1_conv1"]
    assert names[-5:] == ["block5_pool", "head_flatten", "head_dense", "head_dropout",
                          "predictions"]
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    assert loaded.get_layer("block5_conv3").output.shape == (None, 2, 2, 512)
    np.testing.assert_allclose(loaded.predict(images(), verbose=0),
                               model.predict(images(), verbose=0), rtol=1e-5)


def test_the_whole_base_is_frozen_and_only_the_head_trains():
    model = vgg16_model()
    assert all(not layer.trainable for layer in base_layers(model))
    assert trainable_layer_names(model) == HEAD


@pytest.mark.parametrize(("spec", "expected"), [
    ("top", ["block5_conv1", "block5_conv2", "block5_conv3"]),
    ("4", ["block5_conv1", "block5_conv2", "block5_conv3"]),  # the book's layers[-4:]
    ("3", ["block5_conv2", "block5_conv3"]),
    ("block4_conv3", ["block4_conv3", "block5_conv1", "block5_conv2", "block5_conv3"]),
    ("0", []),
])
def test_unfreeze_thaws_the_top_of_the_base_and_keeps_the_head(spec, expected):
    model = vgg16_model()
    assert unfreeze(model, VGG16, spec) == expected + HEAD
    # Thawing less later refreezes what is no longer asked for.
    assert unfreeze(model, VGG16, "0") == HEAD


@pytest.mark.parametrize("spec", ["99", "block9_conv1", "conv5"])
def test_unfreeze_refuses_what_is_not_in_the_base(spec):
    with pytest.raises(PipelineError, match="`unfreeze`"):
        unfreeze(vgg16_model(), VGG16, spec)


def test_batch_normalization_stays_frozen_and_in_inference_mode():
    base = get_base("mobilenet_v2")
    keras.utils.set_random_seed(0)
    model = build_transfer_model(base, WeightsChoice("none", "tf", None, None, ""), 32, 2)
    trainable = unfreeze(model, base, "all")
    norms = [layer for layer in base_layers(model)
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not any(layer.name in trainable for layer in norms)
    before = [layer.moving_mean.numpy().copy() for layer in norms]
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    model.train_on_batch(images(4), np.ones((4, 1), "float32"))
    for layer, mean in zip(norms, before, strict=True):
        np.testing.assert_array_equal(layer.moving_mean.numpy(), mean)


def test_augmentation_can_be_put_in_and_taken_out_keeping_the_weights():
    model = vgg16_model()
    unfreeze(model, VGG16, "top")
    augmented = replace_augmentation(model, build_augmentation(AugmentConfig(), seed=0))
    assert [layer.name for layer in augmented.layers][:3] == ["image", "augmentation", "preprocess"]
    plain = replace_augmentation(augmented, None)
    assert "augmentation" not in [layer.name for layer in plain.layers]
    assert trainable_layer_names(plain) == trainable_layer_names(model)
    for copy in (augmented, plain):  # augmentation is inactive at inference
        np.testing.assert_allclose(copy.predict(images(), verbose=0),
                                   model.predict(images(), verbose=0), rtol=1e-5)


def test_split_at_a_block_boundary_reproduces_the_model():
    model = vgg16_model()
    bottom, top = split_at(model, "block5_conv1")
    assert bottom.output.shape == (None, 2, 2, 512)
    np.testing.assert_allclose(top.predict(bottom.predict(images(), verbose=0), verbose=0),
                               model.predict(images(), verbose=0), rtol=1e-5)


def test_split_inside_a_residual_block_is_refused():
    base = get_base("resnet50")
    model = build_transfer_model(base, WeightsChoice("none", "caffe", None, None, ""), 32, 2)
    with pytest.raises(ValueError):
        split_at(model, "conv5_block1_2_conv")  # the shortcut needs conv4's output too
