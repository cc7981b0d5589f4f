"""Sparse categorical cross-entropy with label smoothing, which Keras' own lacks.

Keras' binary cross-entropy takes ``label_smoothing``; its sparse categorical one does not,
so the integer labels of ``pipeline.data.dataset`` are made one-hot inside the loss, with
``keras.ops`` (every backend). Registered, so a compiled model saved with it loads again.
"""

from __future__ import annotations

import keras
from keras import ops

from pipeline.models.loss_options import check_label_smoothing


@keras.saving.register_keras_serializable(package="pipeline")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy of integer labels against softmax probabilities, with the
    one-hot target smoothed: ``y = onehot(label) * (1 - a) + a / C``.

    Args:
        label_smoothing: ``a`` in [0, 1); 0 is Keras' sparse categorical cross-entropy.
        name: the loss's name.

    Input shape: labels ``(batch,)`` or ``(batch, 1)`` of class indices; probabilities
    ``(batch, C)``. Output: one loss per example, reduced as Keras' losses are.

    Example:
        >>> loss = SmoothedSparseCategoricalCrossentropy(0.1)
        >>> loss([0, 2], [[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    """

    def __init__(self, label_smoothing: float = 0.0,
                 name: str = "smoothed_sparse_categorical_crossentropy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        check_label_smoothing(label_smoothing)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        target = ops.one_hot(labels, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            target, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
