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


def make_optimizer(name: str, learning_rate: float, ema_momentum: float | None = None):
    """A fresh ``keras.optimizers`` instance, with a clear error for names we do not offer.

    ``ema_momentum``: the optimizer also keeps an exponential moving average of the weights
    (Keras' ``use_ema``; see ``pipeline.models.weight_averaging``).
    """
    import keras

    if not learning_rate > 0:
        raise PipelineError(f"`learning_rate` must be positive, got {learning_rate}")
    if name not in OPTIMIZER_CLASSES:
        raise PipelineError(f"`optimizer` {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    check_ema_momentum(ema_momentum)
    class_name, extra = OPTIMIZER_CLASSES[name]
    if ema_momentum is not None:
        extra = {**extra, "use_ema": True, "ema_momentum": ema_momentum}
    return getattr(keras.optimizers, class_name)(learning_rate=learning_rate, **extra)


def check_ema_momentum(ema_momentum: float | None) -> None:
    """Refuse a weight-averaging momentum outside (0, 1)."""
    if ema_momentum is not None and not 0 < ema_momentum < 1:
        raise PipelineError(f"`ema_momentum` {ema_momentum}: give a number between 0 and 1 "
                            "(e.g. 0.998), or leave it unset for no weight averaging")
