"""Stochastic depth: a residual Add that, in training, drops its residual branch per sample.

Huang et al. (2016), "Deep Networks with Stochastic Depth"; timm's ``drop_path`` and
``keras.applications`` EfficientNet's ``drop_connect``: each training sample skips a block
with probability ``rate`` (the block is then the identity), and the kept branches are
scaled by ``1 / (1 - rate)`` so that the expected output equals the plain sum used at
inference. A regulariser for fine-tuning deep residual bases on a few hundred photos: every
step trains a random shallower network.
"""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = ["StochasticDepthAdd"]


@keras.saving.register_keras_serializable(package="pipeline")
class StochasticDepthAdd(keras.layers.Add):
    """A residual Add that, in training, drops each sample's residual branch with ``rate``.

    ``call([residual, shortcut])`` returns ``shortcut + residual * m / (1 - rate)`` with one
    ``m ~ Bernoulli(1 - rate)`` per sample (shared by all of that sample's positions and
    channels), drawn in float32 whatever the compute dtype. At inference, at ``rate`` 0 and
    when the layer is frozen (``trainable`` False) it is Keras' ``Add``: a frozen block stays
    the fixed function whose output cached fine-tuning computes once, as a frozen
    BatchNormalization keeps its statistics.

    Args:
        rate: Probability of dropping a sample's residual branch, in ``[0, 1)``; 0 (default):
            a plain add.
        residual_index: Which input is the residual branch: 0 (default) for ``[residual,
            shortcut]`` (EfficientNet's order), 1 for ``[shortcut, residual]`` (ResNet's and
            MobileNetV2's), so that a base's Add is replaced without reordering its graph.
        seed: Seed of the draws; None (default): one from Keras' global seed.

    Input shape: a list ``[residual, shortcut]`` (or ``[shortcut, residual]``) of two tensors
    of the same shape ``(batch, ...)``. Output shape: that shape.

    Example::

        x = StochasticDepthAdd(0.1, name="block2b_add")([branch, block_input])
    """

    def __init__(self, rate: float = 0.0, residual_index: int = 0, seed: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not (
                0 <= rate < 1 and math.isfinite(rate)):
            raise ValueError(f"`rate` must be a number in [0, 1), got rate={rate!r}.")
        if isinstance(residual_index, bool) or residual_index not in (0, 1):
            raise ValueError(f"`residual_index` must be 0 or 1, got "
                             f"residual_index={residual_index!r}.")
        self.rate = float(rate)
        self.residual_index = int(residual_index)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape) -> None:
        if not isinstance(input_shape, list | tuple) or len(input_shape) != 2 or (
                tuple(input_shape[0]) != tuple(input_shape[1])):
            raise ValueError("StochasticDepthAdd takes [residual, shortcut] of the same shape, "
                             f"got input_shape={input_shape}.")
        super().build(input_shape)

    def call(self, inputs, training=None):
        residual, shortcut = inputs[self.residual_index], inputs[1 - self.residual_index]
        if training and self.trainable and self.rate > 0:
            per_sample = (ops.shape(residual)[0],) + (1,) * (len(residual.shape) - 1)
            draws = keras.random.uniform(per_sample, dtype="float32", seed=self.seed_generator)
            scale = ops.where(draws >= self.rate, 1.0 / (1.0 - self.rate), 0.0)
            residual = residual * ops.cast(scale, residual.dtype)
        return ops.add(residual, shortcut)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate,
                "residual_index": self.residual_index, "seed": self.seed}
