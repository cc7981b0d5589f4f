"""Batch normalization folded into the convolution before it, for inference-only models.

A frozen conv base computes ``BN(conv(x))``: in inference mode BatchNormalization is a fixed
per-channel affine map, so ``conv`` with its kernel and bias scaled by that map gives the
same numbers (to float rounding) without the extra pass over every activation map. On this
project's CPUs that pass is most of a light network's time: EfficientNet-Lite1 at 240 px
computes features about 1.3x faster in float32 and 2.8x faster under mixed bfloat16 folded
(where every BatchNormalization also casts to float32 and back).

``folded_for_inference(model)`` returns such a copy; layers that are not folded are shared
with ``model``, so it costs a graph rebuild, not a copy of the weights. Only inference uses
it (features, augmented views, ``evaluate``: nothing trains there); saved and trained models
keep their BatchNormalization layers.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np

from pipeline.devices.strategies import active_distribution

FOLDABLE = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


def inference_model(model: keras.Model) -> keras.Model:
    """``model`` for computing features: folded, except under several replicas, whose
    variables the strategy must create."""
    distribution = active_distribution()
    if distribution is not None and distribution.replicas > 1:
        return model
    return folded_for_inference(model)


# model -> (its folded copy, [(folded conv, source conv, norm)]): one copy per model, so the
# splits of one extraction share it (and its traced predict function); its folded weights
# are computed again from the source's on every use, so a model trained since is honoured.
_FOLDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def folded_for_inference(model: keras.Model) -> keras.Model:
    """``model`` with every conv -> BatchNormalization pair folded into one conv.

    A pair folds when the conv has no activation of its own, feeds nothing but that
    BatchNormalization, and the normalization is over the last (channels) axis. Models
    that are not functional graphs, or have nothing to fold, are returned unchanged.
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "operations") \
            or isinstance(model, keras.Sequential):
        return model
    known = _FOLDED.get(model)
    if known is None:
        known = _FOLDED[model] = _fold(model)
    folded, copies = known
    for copy, conv, norm in copies:
        copy.set_weights(_folded_weights(conv, norm))
    return folded


def _fold(model: keras.Model) -> tuple[keras.Model, list[tuple[keras.layers.Layer, ...]]]:
    pairs = {conv.name: norm for conv, norm in foldable_pairs(model)}
    if not pairs:
        return model, []
    replaced: dict[str, keras.layers.Layer] = {}  # conv name -> its folded copy
    folded_outputs: set[int] = set()  # ids of tensors a folded conv produced

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name not in pairs:
            return layer  # shared: same weights, nothing copied
        config = layer.get_config()
        config["use_bias"] = True
        copy = layer.__class__.from_config(config)
        replaced[layer.name] = copy
        return copy

    def call(layer: keras.layers.Layer, *args, **kwargs):
        if isinstance(layer, keras.layers.BatchNormalization) and id(args[0]) in folded_outputs:
            return args[0]  # already applied by the conv before it
        outputs = layer(*args, **kwargs)
        if layer.name in replaced and replaced[layer.name] is layer:
            folded_outputs.add(id(outputs))
        return outputs

    folded = keras.models.clone_model(model, clone_function=clone, call_function=call)
    return folded, [(copy, model.get_layer(name), pairs[name]) for name, copy in replaced.items()]


def foldable_pairs(model: keras.Model):
    """(conv, batch norm) pairs of ``model`` that can be folded."""
    names = {layer.name for layer in model.layers}
    for layer in model.layers:
        if not isinstance(layer, FOLDABLE) or not layer.built:
            continue
        if keras.activations.serialize(layer.activation) != "linear":
            continue
        consumers = {id(node.operation): node.operation for node in layer._outbound_nodes}
        if len(consumers) != 1:
            continue
        (norm,) = consumers.values()
        if isinstance(norm, keras.layers.BatchNormalization) and _last_axis(norm) \
                and norm.name in names:
            yield layer, norm


def _last_axis(norm: keras.layers.BatchNormalization) -> bool:
    rank = len(norm.input.shape) if hasattr(norm, "input") else None
    return norm.axis == -1 or (rank is not None and norm.axis == rank - 1)


def norm_affine(norm: keras.layers.BatchNormalization, dtype: str = "float64"):
    """(scale, shift) per channel, tensors of ``dtype``: ``norm`` in inference mode is
    ``x * scale + shift``. Computed from its variables as they are now."""
    ops = keras.ops
    mean = ops.cast(norm.moving_mean, dtype)
    scale = ops.rsqrt(ops.cast(norm.moving_variance, dtype) + norm.epsilon)
    if norm.scale:
        scale = scale * ops.cast(norm.gamma, dtype)
    shift = -mean * scale
    if norm.center:
        shift = shift + ops.cast(norm.beta, dtype)
    return scale, shift


def scale_kernel(kernel, scale, depthwise: bool):
    """``kernel`` times the per-output-channel ``scale`` (arrays or tensors)."""
    if depthwise:  # (kh, kw, C, M): output c * M + m
        return kernel * keras.ops.reshape(scale, (1, 1, *kernel.shape[2:]))
    return kernel * scale  # (..., in, out)


def _folded_weights(conv: keras.layers.Layer, norm: keras.layers.BatchNormalization):
    """[kernel, bias] of ``conv`` with ``norm`` (inference mode) folded in."""
    scale, shift = (np.asarray(value) for value in norm_affine(norm))
    kernel = np.asarray(scale_kernel(np.asarray(conv.kernel, dtype="float64"), scale,
                                     isinstance(conv, keras.layers.DepthwiseConv2D)))
    bias = np.asarray(conv.bias, dtype="float64") * scale if conv.use_bias else 0.0
    return [kernel.astype("float32"), np.broadcast_to(bias + shift, scale.shape).astype("float32")]
