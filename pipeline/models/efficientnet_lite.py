"""EfficientNet-Lite0/1/2 in plain Keras layers, and their ImageNet weights from PyTorch files.

EfficientNet-Lite (``tensorflow/tpu``, ``models/official/efficientnet/lite``) is EfficientNet
made friendly to integer accelerators: ReLU6 instead of swish, no squeeze-and-excitation,
and a stem (32 channels) and head (1280 channels) that the width multiplier leaves alone,
as it leaves the repeats of the first and last stage. ``keras.applications.EfficientNet``
has SE blocks and swish: a different network. Inputs are ``(x - 127) / 128``
(ImagePreprocessing mode ``lite``); BatchNormalization uses the TF values (momentum 0.99,
epsilon 1e-3), which the PyTorch port kept.

Layer names (``stem_conv``, ``block3b_dwconv``, ``block7a_project_bn``, ``top_conv`` ...)
follow ``keras.applications.EfficientNet``; the last conv is ``top_*`` rather than ``head_*``
because ``head_*`` names the classifier heads of this project. Block ``block{stage}{letter}``
is the N-th ``_blocks.N`` of the PyTorch port, in layer order, which is how the weight
mapping finds its tensors.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import keras
import numpy as np

from pipeline.errors import PipelineError
from pipeline.models.torch_legacy import read_state_dict

BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3
STEM_FILTERS = 32
TOP_FILTERS = 1280
CLASSIFIER_NAME = "classifier"


@dataclass(frozen=True)
class Stage:
    """One stage of MBConv blocks of EfficientNet-B0 (before width/depth scaling)."""

    repeats: int
    kernel: int
    stride: int  # of the stage's first block
    expansion: int
    filters_out: int


# EfficientNet-B0's stages (the "r1_k3_s11_e1_i32_o16" block strings), without SE.
B0_STAGES = (
    Stage(1, 3, 1, 1, 16),
    Stage(2, 3, 2, 6, 24),
    Stage(2, 5, 2, 6, 40),
    Stage(3, 3, 2, 6, 80),
    Stage(3, 5, 1, 6, 112),
    Stage(4, 5, 2, 6, 192),
    Stage(1, 3, 1, 6, 320),
)


@dataclass(frozen=True)
class LiteVariant:
    name: str
    width: float
    depth: float
    image_size: int  # the resolution it was trained at
    dropout: float  # before the ImageNet classifier


VARIANTS = {
    v.name: v
    for v in (
        LiteVariant("lite0", 1.0, 1.0, 224, 0.2),
        LiteVariant("lite1", 1.0, 1.1, 240, 0.2),
        LiteVariant("lite2", 1.1, 1.2, 260, 0.3),
    )
}


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, to a multiple of ``divisor``, never 10% below the product."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def stage_repeats(variant: LiteVariant) -> list[int]:
    """Blocks per stage: scaled by ``depth`` (rounded up), except the first and last stage."""
    last = len(B0_STAGES) - 1
    return [s.repeats if i in (0, last) else math.ceil(s.repeats * variant.depth)
            for i, s in enumerate(B0_STAGES)]


# -- building -------------------------------------------------------------------------------------


def efficientnet_lite(
    variant: str, inputs: keras.KerasTensor, include_top: bool = False
) -> keras.Model:
    """EfficientNet-Lite ``variant`` (``lite0``/``lite1``/``lite2``) on preprocessed ``inputs``.

    ``inputs`` are ``(x - 127) / 128`` images, (batch, H, W, 3). Without the top the output
    is the last feature map (batch, H/32, W/32, 1280); with it, softmax probabilities over
    the 1000 ImageNet classes. The layers join ``inputs``' graph (no nested model).
    """
    spec = VARIANTS[variant]
    x = _conv_bn(inputs, STEM_FILTERS, 3, 2, "stem")
    channels = STEM_FILTERS
    for stage_index, (stage, repeats) in enumerate(zip(B0_STAGES, stage_repeats(spec),
                                                       strict=True)):
        filters = round_filters(stage.filters_out, spec.width)
        for repeat in range(repeats):
            name = f"block{stage_index + 1}{chr(ord('a') + repeat)}"
            stride = stage.stride if repeat == 0 else 1
            x = _mbconv(x, channels, filters, stage, stride, name)
            channels = filters
    x = _conv_bn(x, TOP_FILTERS, 1, 1, "top")
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(spec.dropout, name="top_dropout")(x)
        x = keras.layers.Dense(1000, activation="softmax", name=CLASSIFIER_NAME)(x)
    # As keras.applications does: the model starts at the graph's own inputs (the layers
    # before ``inputs``, e.g. preprocessing, come with it).
    sources = keras.utils.get_source_inputs(inputs)
    return keras.Model(sources[0] if len(sources) == 1 else sources, x,
                       name=f"efficientnet_{variant}")


def _batch_norm(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def _conv_bn(x, filters: int, kernel: int, stride: int, prefix: str):
    x = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False,
                            name=f"{prefix}_conv")(x)
    x = _batch_norm(f"{prefix}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{prefix}_activation")(x)


def _mbconv(inputs, channels: int, filters: int, stage: Stage, stride: int, name: str):
    """Expand (1x1), depthwise (k x k, stride), project (1x1, linear); add when shapes match."""
    x = inputs
    if stage.expansion != 1:
        x = _conv_bn(x, channels * stage.expansion, 1, 1, f"{name}_expand")
    x = keras.layers.DepthwiseConv2D(stage.kernel, stride, padding="same", use_bias=False,
                                     name=f"{name}_dwconv")(x)
    x = _batch_norm(f"{name}_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_activation")(x)
    x = keras.layers.Conv2D(filters, 1, padding="same", use_bias=False,
                            name=f"{name}_project_conv")(x)
    x = _batch_norm(f"{name}_project_bn")(x)
    if stride == 1 and channels == filters:
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


# -- the PyTorch port's weights -------------------------------------------------------------------

BN_TENSORS = ("weight", "bias", "running_mean", "running_var")  # gamma, beta, mean, variance
IGNORED_SUFFIX = ".num_batches_tracked"  # a training counter Keras does not keep
_BLOCK = re.compile(r"^(block\d+[a-z])_")
# Keras layer suffix -> module of the PyTorch port's ``_blocks.N``.
_BLOCK_MODULES = {
    "expand_conv": "_expand_conv", "expand_bn": "_bn0",
    "dwconv": "_depthwise_conv", "bn": "_bn1",
    "project_conv": "_project_conv", "project_bn": "_bn2",
}  # fmt: skip
_OUTER_MODULES = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "top_conv": "_conv_head",
                  "top_bn": "_bn1", CLASSIFIER_NAME: "_fc"}


def torch_modules(model: keras.Model) -> dict[str, str]:
    """Keras layer name -> PyTorch module (``block2a_dwconv`` -> ``_blocks.1._depthwise_conv``).

    Covers every EfficientNet-Lite layer with weights; other layers (preprocessing,
    augmentation in front of the base) are not part of the mapping.
    """
    blocks: dict[str, int] = {}
    modules = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name in _OUTER_MODULES:
            modules[layer.name] = _OUTER_MODULES[layer.name]
            continue
        match = _BLOCK.match(layer.name)
        suffix = layer.name[match.end():] if match else ""
        if suffix not in _BLOCK_MODULES:
            continue
        index = blocks.setdefault(match.group(1), len(blocks))
        modules[layer.name] = f"_blocks.{index}.{_BLOCK_MODULES[suffix]}"
    return modules


def _to_keras(layer: keras.layers.Layer, module: str, state: dict[str, np.ndarray]):
    """(tensor names, Keras weights) of one layer, from the port's layout."""
    if isinstance(layer, keras.layers.BatchNormalization):
        names = [f"{module}.{t}" for t in BN_TENSORS]
        return names, [state[n] for n in names]
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return [f"{module}.weight"], [state[f"{module}.weight"].transpose(2, 3, 0, 1)]
    if isinstance(layer, keras.layers.Conv2D):  # (out, in, kh, kw) -> (kh, kw, in, out)
        return [f"{module}.weight"], [state[f"{module}.weight"].transpose(2, 3, 1, 0)]
    if isinstance(layer, keras.layers.Dense):  # (out, in) -> (in, out)
        names = [f"{module}.weight", f"{module}.bias"]
        return names, [state[names[0]].T, state[names[1]]]
    raise PipelineError(f"layer {layer.name!r} has weights of an unexpected kind")


def set_torch_weights(model: keras.Model, state: dict[str, np.ndarray], source: str) -> None:
    """Set every weight of a Lite ``model`` from a port state dict, using each tensor once.

    The classifier's ``_fc`` tensors are skipped when ``model`` has no classifier. Nothing
    is set unless every layer finds its tensors with the right shapes and no tensor is left.
    """
    modules = torch_modules(model)
    updates, used, missing = [], set(), []
    for name, module in modules.items():
        layer = model.get_layer(name)
        try:
            names, values = _to_keras(layer, module, state)
        except KeyError as error:
            missing.append(f"{error.args[0]} (for {name})")
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise PipelineError(
                f"{source}: {', '.join(names)} have shapes {[v.shape for v in values]}, layer "
                f"{name} of {model.name} needs {expected} (a checkpoint of another variant?)"
            )
        used.update(names)
        updates.append((layer, values))
    if missing:
        raise PipelineError(f"{source}: {len(missing)} tensors {model.name} needs are missing, "
                            f"e.g. {', '.join(missing[:3])}")
    optional = "" if CLASSIFIER_NAME in modules else "_fc."
    extra = [n for n in state if n not in used and not n.endswith(IGNORED_SUFFIX)
             and not (optional and n.startswith(optional))]
    if extra:
        raise PipelineError(f"{source}: {len(extra)} tensors have no layer in {model.name}, "
                            f"e.g. {', '.join(extra[:3])} (a checkpoint of another variant?)")
    for layer, values in updates:
        layer.set_weights([np.ascontiguousarray(v) for v in values])


def load_torch_checkpoint(model: keras.Model, path: str | os.PathLike[str]) -> None:
    """Load a legacy-format ``.pth`` of the EfficientNet-Lite PyTorch port into ``model``."""
    set_torch_weights(model, read_state_dict(path), str(path))


def torch_state_dict(model: keras.Model) -> dict[str, np.ndarray]:
    """The inverse mapping: ``model``'s weights in the port's names and layouts."""
    state = {}
    for name, module in torch_modules(model).items():
        layer = model.get_layer(name)
        values = [np.asarray(w) for w in layer.get_weights()]
        if isinstance(layer, keras.layers.BatchNormalization):
            state.update({f"{module}.{t}": v for t, v in zip(BN_TENSORS, values, strict=True)})
            state[module + IGNORED_SUFFIX] = np.array(0, dtype="int64")
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            state[f"{module}.weight"] = values[0].transpose(2, 3, 0, 1)
        elif isinstance(layer, keras.layers.Conv2D):
            state[f"{module}.weight"] = values[0].transpose(3, 2, 0, 1)
        else:
            state[f"{module}.weight"], state[f"{module}.bias"] = values[0].T, values[1]
    return state
