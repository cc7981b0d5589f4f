"""Training at a lower resolution than the model serves: the resize behind progressive resizing.

A convolutional base under a pooling head takes any image size, and its cost per image falls
with the square of the side: 176 px costs 54% of 240 px. Progressive resizing (fastai's
"progressive resizing", EfficientNetV2's "progressive learning") spends the first epochs at a
lower size and finishes at the model's own. The model's input stays the run's size, so the
data pipeline, the saved model and everything that serves it are unchanged; this layer, in
front of preprocessing, shrinks the training batches while ``size`` is set, and does nothing
otherwise (validation, prediction, export: always the full size).

``size`` is the training schedule's state, not the model's configuration: it is not saved, and
a loaded model holds None. Setting it changes what a traced training step computes, so
``pipeline.training.progressive_resize`` retraces the step when it changes it.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["TrainingResize"]


@keras.saving.register_keras_serializable(package="pipeline")
class TrainingResize(keras.layers.Layer):
    """Bilinear resize of training batches to ``size`` x ``size`` while ``size`` is set.

    Without antialiasing: TensorFlow's antialiased resize has no XLA kernel, so a model
    holding it could not train with ``jit_compile=True``; the downscales used here are mild
    (240 to 160-200 px). Input (batch, height, width, channels); output the same, but
    (batch, size, size, channels) in training while ``size`` is set.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.size: int | None = None  # set by the training schedule; None: as it comes

    def call(self, images, training=None):
        if not training or self.size is None:
            return images
        resized = ops.image.resize(ops.cast(images, "float32"), (self.size, self.size),
                                   interpolation="bilinear", antialias=False)
        return ops.cast(resized, images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape  # the symbolic graph is built for inference: the full size
