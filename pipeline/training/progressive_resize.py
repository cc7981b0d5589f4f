"""Progressive resizing: the first half of the epochs at a lower size, the rest at the model's.

``resize_schedule`` (``progressive_resize_options``) says which size each epoch trains at;
``ProgressiveResize`` sets it on the model's ``TrainingResize`` layer at the start of each
epoch and retraces the training step when the size changes (one retrace for the two
phases). Validation always sees the full size. Two phases rather than a ramp of many sizes:
every size costs a trace of the whole training step (some 10 s for EfficientNet-Lite1 on 2
cores), and FixRes (Touvron et al., 2019) finds that what matters is finishing at the size
the model will serve at.
"""

from __future__ import annotations

import keras

from pipeline.layers.training_resize import TrainingResize


def training_resize_layer(model: keras.Model) -> TrainingResize | None:
    """The ``TrainingResize`` layer in ``model`` (nested in its augmentation), if any."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, TrainingResize):
            return layer
    return None


class ProgressiveResize(keras.callbacks.Callback):
    """Sets each epoch's training size on ``layer``; retraces the training step on a change.

    The size is a Python value the traced step was built with, so a new one needs a new
    trace: Keras' ``fit`` looks ``model.train_function`` up on every step, so rebuilding it
    at an epoch's start takes effect at once. A continued run starts at its epoch's size.
    """

    def __init__(self, layer: TrainingResize, schedule: list[int], image_size: int) -> None:
        super().__init__()
        self.layer = layer
        self.schedule = schedule
        self.image_size = image_size

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        size = self.schedule[min(epoch, len(self.schedule) - 1)]
        wanted = None if size == self.image_size else size
        if wanted != self.layer.size:
            self.layer.size = wanted
            self.model.make_train_function(force=True)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.layer.size = None  # the model as it serves
