"""Layer-wise learning-rate decay: lower layers of a fine-tuned base move less than the top.

Discriminative learning rates (Howard and Ruder, 2018; "layer decay" in timm and BEiT): the
head and the last layers train at the full rate, each stage below at ``decay`` times the rate
of the stage above, since the first stages hold generic edges and textures that a few hundred
photos should barely change. Adam's update does not change when a gradient is scaled, so the
rate itself is scaled, per variable: the optimizers here (``LayerDecayAdam`` ...) multiply the
learning rate of each variable's ``update_step`` by its factor, and save the factors with the
model so that a run continues as it trained.

A layer's stage is read from its name, as Keras' and these bases name them: ``block2a_...``
and ``block_5_...`` (EfficientNet, VGG16, MobileNetV2) by their number, ``stem``/``conv1``
below the first block; every layer above the last numbered block (top convolution, head)
trains at the full rate.
"""

from __future__ import annotations

import re
from typing import Any

import keras

from pipeline.models.layer_decay_options import NO_LAYER_DECAY, check_layer_decay

_BLOCK = re.compile(r"block_?(\d+)")
_BELOW_BLOCKS = ("stem", "conv1", "bn_conv1", "input")


def _stage(name: str) -> int | None:
    """The block number in a layer's name, 0 below the first block, None above the last."""
    found = _BLOCK.search(name)
    if found:
        return int(found.group(1))
    return 0 if name.startswith(_BELOW_BLOCKS) else None


def _layers(model: Any):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.weights:  # a nested model: its own layers
            yield from _layers(layer)
        else:
            yield layer


def layer_rate_factors(model: Any, decay: float) -> dict[str, float]:
    """``{variable path: factor}`` for the trainable variables that train below full rate.

    The highest numbered block gets ``decay``, the one below ``decay ** 2``, and so on to the
    stem; layers above the blocks (and models without numbered blocks) are left out: 1.
    """
    check_layer_decay(decay)
    if decay == NO_LAYER_DECAY:
        return {}
    staged = [(layer, _stage(layer.name)) for layer in _layers(model)]
    stages = [stage for _, stage in staged if stage is not None]
    if not stages:
        return {}
    top = max(stages) + 1
    return {variable.path: decay ** (top - stage)
            for layer, stage in staged if stage is not None
            for variable in layer.trainable_weights}


class _ScaledRates:
    """Mixed into a Keras optimizer: each variable's step at its factor of the rate."""

    def __init__(self, *args: Any, rate_factors: dict[str, float] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rate_factors = {str(path): float(factor)
                             for path, factor in (rate_factors or {}).items()}

    def build(self, variables: Any) -> None:
        super().build(variables)
        # In the step a backend may hand over its own variable (TensorFlow: the tf.Variable
        # under Keras'), without Keras' path: the factors go by the optimizer's index.
        self._factor_by_index = [self.rate_factors.get(v.path) for v in variables]

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> Any:
        factor = self._factor_by_index[self._get_variable_index(variable)]
        if factor is not None:
            learning_rate = learning_rate * factor
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate_factors": dict(self.rate_factors)}


def _scaled(base: type) -> type:
    name = f"LayerDecay{base.__name__}"
    cls = type(name, (_ScaledRates, base), {"__doc__": f"Keras' {base.__name__}, each "
                                            "variable's rate scaled by its layer-decay factor."})
    return keras.saving.register_keras_serializable(package="pipeline", name=name)(cls)


SCALED_OPTIMIZERS: dict[str, type] = {
    base.__name__: _scaled(base)
    for base in (keras.optimizers.Adam, keras.optimizers.AdamW, keras.optimizers.RMSprop,
                 keras.optimizers.SGD)
}


def with_layer_decay(optimizer: Any, model: Any, decay: float) -> Any:
    """``optimizer`` as it is when ``decay`` is 1, else the same optimizer (same config)
    scaling each of ``model``'s variables' rate by its stage's factor."""
    factors = layer_rate_factors(model, decay)
    if not factors:
        return optimizer
    scaled = SCALED_OPTIMIZERS[type(optimizer).__name__]
    return scaled.from_config({**optimizer.get_config(), "rate_factors": factors})
