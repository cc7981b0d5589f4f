"""A faster training graph for a model whose BatchNormalization is frozen.

Fine-tuning keeps every BatchNormalization frozen, in inference mode (``transfer.unfreeze``):
each is then a fixed per-channel affine map ``scale * x + shift`` after its convolution.
``conv(x, W) * scale == conv(x, W * scale)`` for a per-output-channel ``scale``, so the
graph computes ``conv(x, W * scale) + shift`` instead: the same function of the same
trainable kernel ``W`` (gradients included), without a pass over every activation map for
the normalization, and without the float32 round trip Keras' BatchNormalization makes
under mixed precision. Under bfloat16 the depthwise convolutions also take the gradients
of ``pipeline.models.depthwise_gradients``.

Measured on EfficientNet-Lite1 at 240 px, the whole base trained (``bench/bench_whole_base.py``,
``docs/results.md``). ``faster_training(model)`` swaps the model's ``call`` for the twin
graph's while ``fit`` runs and puts it back after: the twin shares every variable with the
model, so the model trains; what is saved (checkpoints, ``final.keras``) is the model's own
graph, BatchNormalization layers and all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras

from pipeline.devices.strategies import active_distribution
from pipeline.models.folding import foldable_pairs, norm_affine, scale_kernel


class FrozenNormConv(keras.layers.Layer):
    """``conv`` followed by the frozen ``norm``, as one convolution of ``conv``'s kernel.

    Not saved and not registered: it lives only in the training twin, and holds both source
    layers: the conv's kernel (and bias) train, the normalization's variables stay fixed.
    """

    def __init__(self, conv: keras.layers.Layer, norm: keras.layers.BatchNormalization,
                 **kwargs) -> None:
        super().__init__(name=f"{conv.name}_with_{norm.name}", dtype=conv.dtype_policy,
                         **kwargs)
        self.conv, self.norm = conv, norm
        self.depthwise = isinstance(conv, keras.layers.DepthwiseConv2D)

    def call(self, inputs):
        conv = self.conv
        scale, shift = norm_affine(self.norm, "float32")  # per channel: no cost to speak of
        kernel = keras.ops.cast(scale_kernel(conv.kernel, scale, self.depthwise),
                                self.compute_dtype)
        if self.depthwise:
            outputs = _depthwise(inputs, kernel, conv)
        else:
            outputs = keras.ops.conv(inputs, kernel, strides=conv.strides, padding=conv.padding,
                                     dilation_rate=conv.dilation_rate,
                                     data_format=conv.data_format)
        if conv.use_bias:  # trains as it did before the normalization
            shift = conv.bias * scale + shift
        return outputs + keras.ops.cast(shift, self.compute_dtype)


def _depthwise(inputs, kernel, conv: keras.layers.DepthwiseConv2D):
    """The depthwise convolution, with forward-kernel gradients where they pay (bfloat16)."""
    if (keras.backend.backend() == "tensorflow" and keras.backend.standardize_dtype(
            kernel.dtype) == "bfloat16" and kernel.shape[3] == 1
            and tuple(conv.dilation_rate) == (1, 1) and conv.data_format == "channels_last"
            and None not in inputs.shape[1:]):
        from pipeline.models.depthwise_gradients import depthwise_conv2d

        return depthwise_conv2d(inputs, kernel, conv.strides, conv.padding)
    return keras.ops.depthwise_conv(inputs, kernel, strides=conv.strides, padding=conv.padding,
                                    dilation_rate=conv.dilation_rate,
                                    data_format=conv.data_format)


def training_twin(model: keras.Model) -> keras.Model | None:
    """A graph computing ``model``'s function with every frozen conv -> BatchNormalization
    pair as one ``FrozenNormConv``; every other layer shared. None: nothing to fold."""
    if not isinstance(model, keras.Model) or isinstance(model, keras.Sequential) \
            or not hasattr(model, "operations"):
        return None
    pairs = {conv.name: norm for conv, norm in foldable_pairs(model)
             if not norm.trainable and getattr(conv, "groups", 1) == 1}
    if not pairs:
        return None
    fused: set[int] = set()  # ids of the tensors a FrozenNormConv produced

    def call(layer: keras.layers.Layer, *args, **kwargs):
        if layer.name in pairs:
            outputs = FrozenNormConv(layer, pairs[layer.name])(args[0])
            fused.add(id(outputs))
            return outputs
        if isinstance(layer, keras.layers.BatchNormalization) and id(args[0]) in fused:
            return args[0]  # already applied
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer,
                                    call_function=call)


@contextlib.contextmanager
def faster_training(model: keras.Model) -> Iterator[bool]:
    """While inside, ``model`` computes through its training twin (when it has one and
    trains on one replica); yields whether it does. Its variables, saving and config are
    untouched."""
    distribution = active_distribution()
    twin = None if distribution is not None and distribution.replicas > 1 \
        else training_twin(model)
    if twin is None:
        yield False
        return
    model.call = twin.call  # looked up on every trace: fit's step and validation use it
    _forget_traces(model)
    try:
        yield True
    finally:
        del model.call
        _forget_traces(model)  # later calls trace the model's own graph again


def _forget_traces(model: keras.Model) -> None:
    """Drop Keras' traced train, test and predict functions, so the next use traces anew."""
    for name in ("train_function", "test_function", "predict_function"):
        if getattr(model, name, None) is not None:
            setattr(model, name, None)
