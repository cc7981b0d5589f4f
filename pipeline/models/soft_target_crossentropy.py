"""Categorical cross-entropy of targets given either as class indices or as probabilities.

Mixup and CutMix (``pipeline.training.mixing``) train on mixed targets, probabilities over
the classes, while validation, ``evaluate`` and every later command give class indices: one
loss must take both, as one model is compiled once. Keras' categorical cross-entropy takes
only the first, its sparse one only the second. ``keras.ops`` only (every backend);
registered, so a compiled model saved with it loads again.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from pipeline.models.loss_options import NO_SMOOTHING, check_label_smoothing


def is_class_index(y_true: Any, y_pred: Any) -> bool:
    """Whether ``y_true`` holds class indices, ``(batch,)`` or ``(batch, 1)``, rather than a
    distribution over the ``(batch, C)`` of ``y_pred`` (static shapes: decided per trace)."""
    return len(y_true.shape) < len(y_pred.shape) or (y_true.shape[-1] == 1
                                                     and y_pred.shape[-1] != 1)


@keras.saving.register_keras_serializable(package="pipeline")
class SoftTargetCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy against softmax probabilities of a target that is a
    probability per class (a mixed target) or a class index (one-hot), smoothed:
    ``y = target * (1 - a) + a / C``, ``loss = -sum_c y_c log p_c``.

    Args:
        label_smoothing: ``a`` in [0, 1); 0: the target as given.
        name: the loss's name.

    Input shape: targets ``(batch, C)`` of probabilities, or ``(batch,)`` / ``(batch, 1)``
    of class indices; probabilities ``(batch, C)``. Output: one loss per example, reduced
    as Keras' losses are.

    Example:
        >>> loss = SoftTargetCrossentropy(0.1)
        >>> loss([[0.7, 0.3, 0.0]], [[0.6, 0.3, 0.1]])   # a mixed target
        >>> loss([0], [[0.6, 0.3, 0.1]])                  # a class index, as validated
    """

    def __init__(self, label_smoothing: float = NO_SMOOTHING,
                 name: str = "soft_target_crossentropy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        check_label_smoothing(label_smoothing)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.convert_to_tensor(y_true)
        if is_class_index(y_true, y_pred):
            labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
            target = ops.one_hot(labels, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        else:
            target = ops.cast(y_true, y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            target, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
