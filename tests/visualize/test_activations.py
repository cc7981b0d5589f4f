"""Activations: one grid per convolution and pooling layer, for one image."""

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.saved_model import load_run_model
from pipeline.visualize.activations import (
    activation_grid,
    layer_activations,
    normalise_channel,
    write_activations,
)


@pytest.fixture(scope="module")
def dog(synthetic_dataset):
    return synthetic_dataset / "test" / "dog" / "dog.25.jpg"


def test_one_png_per_conv_and_pool_layer(tiny_run, dog, open_png):
    written = write_activations(tiny_run.path, dog)
    assert [p.name for p in written] == [
        "01-conv1.png", "02-pool1.png", "03-conv2.png", "04-pool2.png",
        "05-conv3.png", "06-pool3.png", "07-conv4.png", "08-pool4.png",
    ]
    assert written[0].parent == tiny_run.file("visualize") / "activations-dog.25"
    for path in written:
        open_png(path, (500, 150))


def test_feature_maps_have_the_layers_shape(tiny_run):
    model = load_run_model(tiny_run.path).model
    image = np.random.default_rng(0).uniform(0, 255, (48, 48, 3)).astype("float32")
    maps = layer_activations(model, image, ["conv1", "pool2"])
    assert list(maps) == ["conv1", "pool2"]
    assert maps["conv1"].shape == (46, 46, 32) and maps["pool2"].shape == (10, 10, 64)


def test_chosen_layers_must_be_feature_maps(tiny_run, dog, tmp_path):
    with pytest.raises(PipelineError, match="no such layer"):
        write_activations(tiny_run.path, dog, layer_names=["conv9"], out_dir=tmp_path)
    with pytest.raises(PipelineError, match="not feature maps"):
        write_activations(tiny_run.path, dog, layer_names=["dense"], out_dir=tmp_path)
    with pytest.raises(PipelineError, match="no such file"):
        write_activations(tiny_run.path, tmp_path / "missing.jpg")


def test_channels_are_contrast_stretched_and_dead_ones_stay_flat():
    channel = np.array([[0.0, 1.0], [2.0, 3.0]])
    stretched = normalise_channel(channel)
    assert stretched.mean() == pytest.approx(128) and stretched.std() == pytest.approx(64)
    np.testing.assert_array_equal(normalise_channel(np.zeros((3, 3))), 0)
    grid = activation_grid(np.ones((5, 5, 40)), max_channels=8)
    assert grid.shape == (5 * 2 + 1, 5 * 4 + 3)  # 8 channels in 2 rows of 4, 1 px gaps
