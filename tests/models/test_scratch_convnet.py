"""The classic from-scratch convnet."""

import keras
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
