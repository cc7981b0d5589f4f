"""Accuracy against the dominant class of a target, whether mixed or a class index.

Keras' ``"accuracy"`` picks binary, sparse or categorical accuracy from the shapes of the
first batch it sees, the training one, and keeps that choice for validation: mixed one-hot
training targets would choose categorical accuracy, which misreads the class indices of
validation. This metric decides per batch, from that batch's shapes, so validation (never
mixed) counts exactly as Keras' binary or sparse categorical accuracy would.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from pipeline.models.soft_target_crossentropy import is_class_index


def dominant_class_hits(y_true: Any, y_pred: Any) -> Any:
    """1.0 where the predicted class is the target's dominant class, else 0.0, per example.

    Two classes (``y_pred`` ``(batch, 1)``, a sigmoid): the target and the prediction above
    0.5 are class 1. More: the class index, or the class with the largest share of a mixed
    target, against the most probable class.
    """
    y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
    if y_pred.shape[-1] == 1:
        true = ops.reshape(y_true, (-1,)) > 0.5
        predicted = ops.reshape(y_pred, (-1,)) > 0.5
    else:
        predicted = ops.argmax(y_pred, axis=-1)
        if is_class_index(y_true, y_pred):
            true = ops.reshape(ops.cast(y_true, predicted.dtype), (-1,))
        else:
            true = ops.argmax(y_true, axis=-1)
    return ops.cast(ops.equal(true, predicted), "float32")


@keras.saving.register_keras_serializable(package="pipeline")
class DominantClassAccuracy(keras.metrics.MeanMetricWrapper):
    """The share of examples whose predicted class is their target's dominant class
    (``dominant_class_hits``), named ``accuracy`` as Keras' own, so histories, plots and
    checkpoints read it as before.

    Args:
        name: the metric's name (default ``accuracy``).
        dtype: the result's dtype.

    Example:
        >>> metric = DominantClassAccuracy()
        >>> metric.update_state([[0.7, 0.3]], [[0.6, 0.4]])   # a mixed target: a hit
        >>> metric.update_state([1], [[0.6, 0.4]])            # a class index: a miss
        >>> float(metric.result())                            # 0.5
    """

    def __init__(self, name: str = "accuracy", dtype: str | None = None) -> None:
        super().__init__(fn=dominant_class_hits, name=name, dtype=dtype)
        self._direction = "up"  # BestCheckpoint and EarlyStopping maximise it

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}
