"""The from-scratch convnets: the book's classic and its mini Xception."""

import keras
import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.models.scratch import build_scratch_convnet, smallest_image_size


def test_book_architecture_at_150_pixels():
    model = build_scratch_convnet(150, 2)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [32, 64, 128, 128]
    assert model.get_layer("flatten").output.shape[-1] == 7 * 7 * 128
    assert model.output.shape[-1] == 1 and model.count_params() == 3_453_121


def test_dropout_l2_and_n_classes():
    model = build_scratch_convnet(64, 5, dropout=0.5, l2=1e-3)
    assert model.get_layer("dropout").rate == 0.5
    assert model.get_layer("conv1").kernel_regularizer is not None
    assert model.output.shape[-1] == 5


def test_too_small_images_and_bad_rates_are_clear_errors():
    assert smallest_image_size() == 46
    build_scratch_convnet(46, 2)
    with pytest.raises(PipelineError, match="`image_size` 45"):
        build_scratch_convnet(45, 2)
    with pytest.raises(PipelineError, match="`dropout`"):
        build_scratch_convnet(64, 2, dropout=1.0)


def test_mini_xception_is_the_second_editions_shape():
    model = build_scratch_convnet(180, 2, architecture_name="mini_xception", dropout=0.5)
    separable = [layer for layer in model.layers
                 if isinstance(layer, keras.layers.SeparableConv2D)]
    assert [layer.filters for layer in separable] == [32, 32, 64, 64, 128, 128, 256, 256,
                                                      512, 512]
    assert not any(layer.use_bias for layer in separable)  # batch normalization follows
    assert sum(isinstance(layer, keras.layers.Add) for layer in model.layers) == 5
    assert model.get_layer("gap").output.shape[-1] == 512
    assert model.layers[-2].name == "dropout" and model.layers[-2].rate == 0.5
    assert model.count_params() == 721_857  # global pooling: the same at any size
    assert build_scratch_convnet(64, 2, architecture_name="mini_xception").count_params() \
        == 721_857


def test_mini_xception_penalises_its_kernels_and_refuses_too_small_images():
    model = build_scratch_convnet(32, 3, architecture_name="mini_xception", l2=1e-4)
    layer = model.get_layer("block3_sepconv2")
    assert layer.depthwise_regularizer is not None and layer.pointwise_regularizer is not None
    assert model.get_layer("block1_shortcut").kernel_regularizer is not None
    assert model.output.shape[-1] == 3
    build_scratch_convnet(5, 2, architecture_name="mini_xception")
    with pytest.raises(PipelineError, match="`image_size` 4 is too small for mini_xception"):
        build_scratch_convnet(4, 2, architecture_name="mini_xception")
    with pytest.raises(PipelineError, match=r"`architecture` 'resnet'.*convnet, mini_xception"):
        build_scratch_convnet(64, 2, architecture_name="resnet")


def test_mini_xception_trains_in_mixed_precision_under_xla_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_scratch_convnet(24, 2, architecture_name="mini_xception")
        assert model.get_layer("block2_sepconv1").compute_dtype == "bfloat16"
        assert model.output.dtype == "float32"  # the loss stays float32
        model.compile("rmsprop", "binary_crossentropy", jit_compile=True)
        images = np.random.default_rng(0).uniform(0, 255, (8, 24, 24, 3)).astype("float32")
        labels = np.array([0, 1] * 4, "float32")[:, None]
        history = model.fit(images, labels, batch_size=4, epochs=2, verbose=0)
        assert all(np.isfinite(history.history["loss"]))
        path = tmp_path / "mini.keras"
        model.save(path)
        again = keras.saving.load_model(path)
        np.testing.assert_allclose(again.predict(images, verbose=0),
                                   model.predict(images, verbose=0), atol=1e-6)
    finally:
        keras.mixed_precision.set_global_policy(previous)
