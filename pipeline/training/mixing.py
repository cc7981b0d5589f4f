"""Mixup and CutMix: training batches mixed in the tf.data pipeline, after augmentation.

Each image ``i`` of a batch is mixed with a partner ``j`` (a random permutation of the
batch), its share ``lambda_i`` drawn from Beta(alpha, alpha), and the targets the same way:
``y = lambda_i * y_i + (1 - lambda_i) * y_j``, one-hot for several classes, the 0..1 label
for two. The targets are then soft; the loss and the accuracy take them
(``pipeline.models.losses``). Validation and test batches never pass through here.

- mixup (Zhang et al., 2018): ``x = lambda_i * x_i + (1 - lambda_i) * x_j``. Keras' own
  ``keras.layers.MixUp`` does exactly this, per image, inside tf.data: it is used as is.
- CutMix (Yun et al., 2019): a box of ``x_j`` pasted into ``x_i``; ``lambda_i`` becomes the
  share of ``x_i`` left. A function here (``cutmix_batch``), not ``keras.layers.CutMix``,
  which does not fit: it takes no alpha (it draws one per batch, uniformly in a ``factor``
  range of at most [0, 1], so CutMix's usual alpha 1 cannot be asked for), and it mixes the
  labels by the area of a box with fractional corners while pasting the whole pixels inside
  it, so a label weight can differ from the share of pixels pasted (17 points in one draw
  of 10-pixel images).

With both on, each batch is mixed by one of the two, at random (as timm does).

Keras' ``class_weight`` weighs a mixed example by its dominant class (its largest share).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from pipeline.training.options import TrainingOptions

# Mixing draws from its own stream: the same seed as augmentation's would draw the same
# uniforms, tying each image's share to its augmentation.
MIXING_SEED_OFFSET = 7919


def soft_targets(labels: Any, num_classes: int) -> tf.Tensor:
    """Labels as mixable targets, float32: two classes' ``(batch, 1)`` 0/1 labels as they
    are, more classes' ``(batch,)`` indices one-hot ``(batch, C)``."""
    if num_classes == 2:
        return tf.reshape(tf.cast(labels, tf.float32), (-1, 1))
    return tf.one_hot(tf.reshape(tf.cast(labels, tf.int32), (-1,)), num_classes,
                      dtype=tf.float32)


def mixup_layer(alpha: float, seed: int | None = None) -> keras.layers.MixUp:
    """Keras' ``MixUp`` drawing each image's share from Beta(``alpha``, ``alpha``), in
    float32 whatever the precision policy (the blend is exact; the model casts its input)."""
    return keras.layers.MixUp(alpha=alpha, seed=seed, dtype="float32")


def mixup_batch(layer: keras.layers.MixUp, images: Any, targets: Any) -> tuple[Any, Any]:
    """``images`` ``(batch, H, W, C)`` and ``targets`` ``(batch, K)`` mixed by ``layer``."""
    mixed = layer({"images": images, "labels": targets}, training=True)
    return mixed["images"], mixed["labels"]


def cutmix_batch(images: Any, targets: Any, alpha: float,
                 seed: keras.random.SeedGenerator) -> tuple[Any, Any]:
    """``images`` ``(batch, H, W, C)`` with a box of a partner image pasted into each, and
    ``targets`` ``(batch, K)`` mixed by the share of pixels each image keeps.

    Per image: ``lambda ~ Beta(alpha, alpha)``; a box of ``round(H * sqrt(1 - lambda))`` by
    ``round(W * sqrt(1 - lambda))`` pixels, placed uniformly where it fits whole; the target
    weight is ``1 - box pixels / (H * W)``, counted on the whole pixels pasted, so it is
    exactly the share of the image left, and follows Beta(alpha, alpha) up to a pixel. (Yun
    et al. centre the box on a uniform pixel and cut it at the edges: the pasted share is
    then smaller than ``1 - lambda`` near the edges, and alpha no longer says what it gets.)
    """
    images = ops.convert_to_tensor(images)
    targets = ops.cast(targets, "float32")
    shape = ops.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    share = keras.random.beta((batch,), alpha, alpha, seed=seed)
    partner = keras.random.shuffle(ops.arange(batch), seed=seed)
    side = ops.sqrt(1.0 - share)
    rows, row_inside = _cut(height, side, batch, seed)
    cols, col_inside = _cut(width, side, batch, seed)
    inside = ops.logical_and(row_inside[:, :, None, None], col_inside[:, None, :, None])
    pasted = ops.where(inside, ops.take(images, partner, axis=0), images)
    kept = 1.0 - ops.cast(rows * cols, "float32") / ops.cast(height * width, "float32")
    kept = kept[:, None]
    mixed = kept * targets + (1.0 - kept) * ops.take(targets, partner, axis=0)
    return pasted, mixed


def _cut(length: int, side: Any, batch: Any, seed: keras.random.SeedGenerator
         ) -> tuple[Any, Any]:
    """Along one axis of ``length`` pixels: the box's pixel count per image ``(batch,)`` and
    which pixels it covers ``(batch, length)``; ``side`` its share of the length."""
    size = ops.cast(ops.round(side * ops.cast(length, "float32")), "int32")
    room = ops.cast(length - size + 1, "float32")  # the starts where it fits whole
    start = ops.cast(ops.floor(keras.random.uniform((batch,), seed=seed) * room), "int32")
    start = ops.minimum(start, length - size)
    index = ops.arange(length)[None, :]
    inside = ops.logical_and(index >= start[:, None], index < (start + size)[:, None])
    return size, inside


def mixer(num_classes: int, mixup: float, cutmix: float, seed: int
          ) -> Callable[[Any, Any], tuple[Any, Any]]:
    """The tf.data map function mixing one (images, labels) batch into (images, targets):
    mixup with alpha ``mixup``, CutMix with alpha ``cutmix`` (0: off; both on: one of the
    two per batch, at random). Its random state is its own, seeded by ``seed``."""
    mixup_by = mixup_layer(mixup, seed) if mixup else None
    generator = keras.random.SeedGenerator(seed)

    def mix(images: Any, labels: Any) -> tuple[Any, Any]:
        images, targets = tf.cast(images, tf.float32), soft_targets(labels, num_classes)
        if mixup_by is None:
            return cutmix_batch(images, targets, cutmix, generator)
        if not cutmix:
            return mixup_batch(mixup_by, images, targets)
        return tf.cond(keras.random.uniform((), seed=generator) < 0.5,
                       lambda: mixup_batch(mixup_by, images, targets),
                       lambda: cutmix_batch(images, targets, cutmix, generator))

    return mix


def mixed(dataset: tf.data.Dataset, num_classes: int, options: TrainingOptions
          ) -> tf.data.Dataset:
    """``dataset`` of training (images, labels) batches mixed as ``options.mixup`` and
    ``options.cutmix`` say (unchanged when both are 0); to be given augmented batches."""
    if not options.mixes:
        return dataset
    mix = mixer(num_classes, options.mixup, options.cutmix,
                options.seed + MIXING_SEED_OFFSET)
    return dataset.map(mix, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
