"""A pretrained conv base and a head joined into one flat model that takes raw images.

Layout of every transfer model (layer names as written)::

    image -> [augmentation] -> preprocess -> <the base's own layers> -> head_* -> predictions

The base is built on the preprocessed tensor (``input_tensor=``), so its layers sit in
the outer graph under their ``keras.applications`` names (``block5_conv3`` ...): a saved
model answers ``get_layer`` for any of them and loads with ``safe_mode=True``. Which
layers train is decided here too: extraction freezes the whole base, fine-tuning thaws
its top; BatchNormalization layers always stay frozen, which in Keras 3 also keeps them
in inference mode (their statistics never drift on a small dataset).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from pipeline.errors import PipelineError
from pipeline.models.bases import ConvBase
from pipeline.models.drop_path import DropPathPlan, plan_drop_path
from pipeline.models.drop_path_options import NO_DROP_PATH
from pipeline.models.heads import OUTPUT_NAME, HeadOptions, head_layers, is_head_layer, stack
from pipeline.models.preprocessing import ImagePreprocessing
from pipeline.models.weights import WeightsChoice, apply_checkpoint

INPUT_NAME = "image"
AUGMENTATION_NAME = "augmentation"
PREPROCESS_NAME = "preprocess"


# -- building -------------------------------------------------------------------------------------


def build_features_model(
    base: ConvBase,
    weights: WeightsChoice,
    image_size: int | None,
    augmentation: keras.Layer | None = None,
) -> keras.Model:
    """Raw images (0..255) in, the base's last feature map out; the base frozen.

    ``image_size`` None takes images of any size (multi-size training with a head that
    pools to a fixed length).
    """
    if image_size is not None:
        base.check_image_size(image_size)
    inputs = keras.Input(shape=(image_size, image_size, 3), name=INPUT_NAME)
    x = inputs
    if augmentation is not None:
        augmentation.name = AUGMENTATION_NAME
        x = augmentation(x)
    x = ImagePreprocessing(weights.preprocessing, name=PREPROCESS_NAME)(x)
    try:
        conv = base.build(x, weights.keras_weights)
    except (ValueError, OSError) as error:
        raise PipelineError(
            f"`weights` {weights.keras_weights}: cannot be loaded into {base.name} ({error})"
        ) from None
    if weights.checkpoint is not None:
        apply_checkpoint(conv, base, weights.checkpoint)
    model = keras.Model(inputs, conv.output, name=f"{base.name}_features")
    for layer in base_layers(model):
        layer.trainable = False
    return model


def attach_head(features_model: keras.Model, layers: Sequence[keras.layers.Layer]) -> keras.Model:
    """The features model with ``layers`` (a head, possibly already trained) on top."""
    outputs = stack(layers, features_model.output)
    return keras.Model(features_model.input, outputs, name=features_model.name.replace(
        "_features", "_transfer"))


def build_transfer_model(
    base: ConvBase,
    weights: WeightsChoice,
    image_size: int | None,
    num_classes: int,
    head: str = "flatten",
    options: HeadOptions | None = None,
    augmentation: keras.Layer | None = None,
) -> keras.Model:
    """Conv base (frozen) and a fresh head ``head``, raw images in."""
    features = build_features_model(base, weights, image_size, augmentation)
    return attach_head(features, head_layers(head, num_classes, options or HeadOptions()))


def replace_augmentation(
    model: keras.Model, augmentation: keras.Layer | None, dtype_policy: str | None = None,
    drop_path: float = NO_DROP_PATH,
) -> keras.Model:
    """A copy of a transfer model with ``augmentation`` (or none) in front of preprocessing.

    The copy has fresh layers holding the same weights and trainable flags. With
    ``dtype_policy`` (``float32``, ``mixed_float16`` ...) every layer but the output computes
    under that policy, whatever the model was saved with; the output stays float32. With
    ``drop_path`` above 0 the base's residual Adds become ``StochasticDepthAdd`` layers
    dropping their branch at rates rising with depth to ``drop_path``
    (``pipeline.models.drop_path``); at inference the copy computes as the model.
    """
    if augmentation is not None:
        augmentation.name = AUGMENTATION_NAME
    plan = plan_drop_path(base_layers(model), drop_path) if drop_path else DropPathPlan()

    def clone(layer):
        config = layer.get_config()
        if dtype_policy is not None and layer.name != OUTPUT_NAME and "dtype" in config:
            config["dtype"] = dtype_policy
        return plan.rebuild(layer, config)

    def call(layer, *args, **kwargs):
        if layer.name == AUGMENTATION_NAME:
            return args[0]  # the old augmentation is left out
        if layer.name == PREPROCESS_NAME and augmentation is not None:
            return layer(augmentation(args[0]), **kwargs)
        return layer(*args, **kwargs)

    copy = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for layer in copy.layers:
        if layer.weights and layer.name != AUGMENTATION_NAME:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return copy


# -- what trains ----------------------------------------------------------------------------------


def base_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The conv base layers of a transfer model, in order: after preprocessing, before the head."""
    names = [layer.name for layer in model.layers]
    if PREPROCESS_NAME not in names:
        raise PipelineError(f"model {model.name!r} is not a transfer model (no {PREPROCESS_NAME})")
    start = names.index(PREPROCESS_NAME) + 1
    return [layer for layer in model.layers[start:] if not is_head_layer(layer)]


def base_output_name(model: keras.Model) -> str:
    """Name of the conv base's last layer in a transfer model (the head's input)."""
    return base_layers(model)[-1].name


def unfreeze(model: keras.Model, base: ConvBase, spec: str | int = "top") -> list[str]:
    """Make the top of the conv base trainable; returns the layers that now have trainable weights.

    ``spec``: ``"top"`` (the base's last block or stage, e.g. VGG16's block5), ``"all"``,
    a number N (the last N layers of the base, counting pooling layers as Keras does), or a
    layer name (that layer and all after it). The head always trains; BatchNormalization
    never does.
    """
    layers = base_layers(model)
    names = [layer.name for layer in layers]
    start = _first_unfrozen(names, base, str(spec))
    for index, layer in enumerate(layers):
        thaw = index >= start and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = thaw
    for layer in model.layers:
        if is_head_layer(layer):
            layer.trainable = True
    return trainable_layer_names(model)


def _first_unfrozen(names: list[str], base: ConvBase, spec: str) -> int:
    if spec == "top":
        if base.top_block not in names:
            raise PipelineError(
                f"this model has no layer {base.top_block!r}: it is not a {base.name} model"
            )
        return names.index(base.top_block)
    if spec == "all":
        return 0
    if spec.isdigit():
        count = int(spec)
        if count > len(names):
            raise PipelineError(
                f"`unfreeze` {count}: the {base.name} base has {len(names)} layers"
            )
        return len(names) - count
    if spec in names:
        return names.index(spec)
    raise PipelineError(
        f"`unfreeze` {spec!r}: give top, all, a number of layers, or a layer of the {base.name} "
        f"base (e.g. {base.top_block})"
    )


def trainable_layer_names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers if layer.trainable and layer.trainable_weights]


# -- splitting for cached fine-tuning -------------------------------------------------------------


def split_at(model: keras.Model, layer_name: str) -> tuple[keras.Model, keras.Model]:
    """``(bottom, top)``: images to the input of ``layer_name``, and from there to the output.

    Both share the model's layers, so training ``top`` trains ``model``. Raises ValueError
    when the rest of the graph needs more than that one tensor (a cut inside a residual block).
    """
    tensor = model.get_layer(layer_name).input
    top = keras.Model(tensor, model.output, name=f"{model.name}_top")
    bottom = keras.Model(model.input, tensor, name=f"{model.name}_bottom")
    return bottom, top


def first_trainable_base_layer(model: keras.Model) -> str | None:
    """Name of the first conv base layer with trainable weights (None: only the head trains)."""
    for layer in base_layers(model):
        if layer.trainable and layer.trainable_weights:
            return layer.name
    return None


def producer_name(model: keras.Model, tensor: keras.KerasTensor) -> str:
    """Name of the layer of ``model`` whose output is ``tensor``."""
    for layer in model.layers:
        if layer.output is tensor:
            return layer.name
    raise ValueError("tensor is not the output of a layer of this model")
