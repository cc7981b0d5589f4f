"""Gradient ascent finds the input each filter likes: here, a red and a blue filter."""

import keras
import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.visualize.filters import filter_patterns, write_filter_patterns


def colour_model() -> keras.Model:
    """One 1x1 ReLU conv: filter 0 fires on strong red only (bias -0.8), filter 1 on blue."""
    weights = np.zeros((1, 1, 3, 2), dtype="float32")
    weights[0, 0, 0, 0] = 1.0  # red
    weights[0, 0, 2, 1] = 1.0  # blue
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    conv = keras.layers.Conv2D(2, 1, activation="relu", name="colours")
    x = conv(x)
    conv.set_weights([weights, np.array([-0.8, 0.0], "float32")])
    x = keras.layers.MaxPooling2D(name="pool")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def test_each_pattern_shows_its_filters_colour():
    patterns, scores = filter_patterns(colour_model(), "colours", count=2, steps=20, image_size=12)
    assert patterns.shape == (2, 12, 12, 3) and patterns.dtype == np.uint8
    red, blue = patterns.astype(float).mean(axis=(1, 2))
    # The red filter is silent on the grey start (0.5 - 0.8 < 0, so its ReLU gives 0 and no
    # gradient); ascending its response before the ReLU still finds red.
    assert red[0] > red[2] + 50
    assert blue[2] > blue[0] + 50
    # Scores (before the ReLU) climb from about 0.5 - 0.8 and 0.5 to near their maxima 0.2, 1.
    assert scores[0] > 0.1 and scores[1] > 0.9


def test_count_is_capped_at_the_number_of_filters():
    patterns, _ = filter_patterns(colour_model(), "colours", count=10, steps=1, image_size=12)
    assert len(patterns) == 2


def test_only_convolution_layers_have_filters():
    with pytest.raises(PipelineError, match="not a convolution; choose one of: colours"):
        filter_patterns(colour_model(), "pool", image_size=12)
    with pytest.raises(PipelineError, match="no such layer"):
        filter_patterns(colour_model(), "block1_conv1", image_size=12)


def test_writes_a_grid_for_a_runs_layer(tiny_run, open_png):
    path = write_filter_patterns(tiny_run.path, "conv1", count=4, steps=5)
    assert path == tiny_run.file("visualize") / "filters-conv1.png"
    open_png(path, (400, 400))
