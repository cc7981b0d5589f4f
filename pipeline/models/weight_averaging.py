"""Weight averaging (Polyak, exponential moving average): Keras' ``use_ema``, used whole.

Why: fine-tuning on 2,000 photos at a low, constant rate is noisy from epoch to epoch (the
validation loss of VGG16's block5 jumps by 10-20% between neighbouring epochs), and picking
"the best epoch" from such a curve picks noise as well as signal. The average of the
weights over the last few hundred steps sits in the middle of that noise. Keras keeps the
average in the optimizer (``use_ema``, updated after every step, inside the compiled step);
what it leaves to the caller is to validate, checkpoint and save the average rather than the
raw weights: ``keras.callbacks.SwapEMAWeights`` swaps it in for validation, and
``averaged_weights`` does the same around a save. ``last.keras`` keeps the raw weights and
the optimizer (the average included), so a continued run carries on exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np


def _optimizer(model: keras.Model) -> Any:
    """``model``'s optimizer, unwrapped from a loss-scale wrapper (float16 on a GPU)."""
    optimizer = getattr(model, "optimizer", None)
    return getattr(optimizer, "inner_optimizer", optimizer)


def averaging_optimizer(model: keras.Model) -> Any | None:
    """The optimizer of ``model`` when it keeps a weight average, else None (also before
    it is built: no step taken, nothing averaged)."""
    optimizer = _optimizer(model)
    if getattr(optimizer, "use_ema", False) and hasattr(optimizer,
                                                         "_model_variables_moving_average"):
        return optimizer
    return None


def validation_callbacks(model: keras.Model) -> list[keras.callbacks.Callback]:
    """Keras' callback that validates the average, where ``model`` keeps one."""
    if getattr(_optimizer(model), "use_ema", False):
        return [keras.callbacks.SwapEMAWeights()]
    return []


def end_validation_swap(callbacks: list[keras.callbacks.Callback]) -> None:
    """Put the raw weights back in the model if a stop came inside a validation pass.

    ``SwapEMAWeights`` swaps the average in as validation begins and out as it ends; a
    Ctrl-C between the two leaves the average in the model and the raw weights in the
    optimizer's average slots, where ``averaged_weights`` would then find the wrong ones.
    """
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.SwapEMAWeights):
            callback.on_test_end()  # swaps back only when the average is in the model


@contextlib.contextmanager
def averaged_weights(model: keras.Model) -> Iterator[None]:
    """Within the block, ``model``'s trainable weights are the optimizer's average (when it
    keeps one); the raw weights come back on the way out, whatever happens inside."""
    optimizer = averaging_optimizer(model)
    if optimizer is None:
        yield
        return
    pairs = list(zip(optimizer._trainable_variables,
                     optimizer._model_variables_moving_average, strict=True))
    raw = [np.array(keras.ops.convert_to_numpy(variable)) for variable, _ in pairs]
    for variable, average in pairs:
        variable.assign(average)
    try:
        yield
    finally:
        for (variable, _), value in zip(pairs, raw, strict=True):
            variable.assign(value)
