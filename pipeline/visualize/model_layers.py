"""Find the layers worth looking at in a model, with clear errors for names that do not fit.

Works on flat functional models (ours are: a pretrained base is built into the same graph),
so any layer's output can be reached from the model's raw-image input.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from pipeline.errors import PipelineError

CONV_TYPES = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)
POOL_TYPES = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def is_conv_layer(layer: keras.Layer) -> bool:
    return isinstance(layer, CONV_TYPES)


def conv_layers(model: keras.Model) -> list[keras.Layer]:
    """The 2D convolution layers of ``model``, input to output."""
    return [layer for layer in model.layers if is_conv_layer(layer)]


def feature_map_layers(model: keras.Model) -> list[keras.Layer]:
    """Convolution and pooling layers: those whose outputs are the feature maps to look at."""
    return [layer for layer in model.layers if isinstance(layer, CONV_TYPES + POOL_TYPES)]


def find_layer(model: keras.Model, name: str, field: str = "layer_name") -> keras.Layer:
    """``model``'s layer called ``name``, or an error listing the convolution layers there are."""
    try:
        return model.get_layer(name)
    except ValueError:
        choices = _short_list([layer.name for layer in conv_layers(model)])
        raise PipelineError(
            f"`{field}` {name!r}: no such layer in {model.name}; convolution layers: {choices}"
        ) from None


def find_conv_layer(model: keras.Model, name: str) -> keras.Layer:
    """Like ``find_layer``, and the layer must be a convolution (it has filters to look at)."""
    layer = find_layer(model, name)
    if not is_conv_layer(layer):
        choices = _short_list([layer.name for layer in conv_layers(model)])
        raise PipelineError(
            f"`layer_name` {name!r} is a {type(layer).__name__}, not a convolution; "
            f"choose one of: {choices}"
        )
    return layer


def last_conv_layer(model: keras.Model) -> keras.Layer:
    """The convolution nearest the output: the usual choice for Grad-CAM."""
    layers = conv_layers(model)
    if not layers:
        raise PipelineError(
            f"{model.name} has no convolution layer at its top level; name one with `layer_name`"
        )
    return layers[-1]


def outputs_model(model: keras.Model, layers: Sequence[keras.Layer]) -> keras.Model:
    """A model from ``model``'s raw-image input to the outputs of ``layers``."""
    return keras.Model(single_input(model), [layer.output for layer in layers])


def single_input(model: keras.Model):
    """The model's one input tensor (a list input makes Keras warn when fed a plain array)."""
    if len(model.inputs) != 1:
        raise PipelineError(f"{model.name} takes {len(model.inputs)} inputs; only one is supported")
    return model.inputs[0]


def _short_list(names: list[str], limit: int = 12) -> str:
    if not names:
        return "(none)"
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join([*names[: limit // 2], "...", *names[-limit // 2 :]])
