"""The optimizers on offer, by name. Light (Keras is imported on use): the CLI lists them."""

from __future__ import annotations

from typing import Any

from pipeline.errors import PipelineError

# name -> (keras.optimizers class, extra arguments)
OPTIMIZER_CLASSES: dict[str, tuple[str, dict[str, Any]]] = {
    "rmsprop": ("RMSprop", {}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "sgd": ("SGD", {"momentum": 0.9}),
}
OPTIMIZERS = tuple(OPTIMIZER_CLASSES)


def make_optimizer(name: str, learning_rate: float):
    """A fresh ``keras.optimizers`` instance, with a clear error for names we do not offer."""
    import keras

    if not learning_rate > 0:
        raise PipelineError(f"`learning_rate` must be positive, got {learning_rate}")
    if name not in OPTIMIZER_CLASSES:
        raise PipelineError(f"`optimizer` {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    class_name, extra = OPTIMIZER_CLASSES[name]
    return getattr(keras.optimizers, class_name)(learning_rate=learning_rate, **extra)
