"""What every classifier here shares: its output layer, loss and compilation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import keras

from pipeline.errors import PipelineError
from pipeline.models.losses import loss_for
from pipeline.models.optimizers import make_optimizer


def output_layer(num_classes: int, name: str = "predictions") -> keras.layers.Dense:
    """One sigmoid unit for two classes, a softmax over N otherwise.

    The output is float32 even under mixed precision, so the loss (float32 by default in
    Keras) is computed on float32 probabilities and stays stable.
    """
    if num_classes < 2:
        raise PipelineError(
            f"a classifier needs at least 2 classes, the dataset has {num_classes}"
        )
    if num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name=name)
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=name)


# XLA for every model compiled while a workflow runs, set once for it like the dtype policy.
_JIT_COMPILE: ContextVar[bool | str] = ContextVar("jit_compile", default="auto")


@contextlib.contextmanager
def jit_compiling(jit_compile: bool | str) -> Iterator[None]:
    """Compile classifiers in the block with Keras' ``jit_compile`` (True, False, "auto").

    A workflow sets it once (``pipeline.training.context``) instead of every one of its
    compile calls taking it, as Keras' dtype policy is set once for a whole workflow.
    """
    token = _JIT_COMPILE.set(jit_compile)
    try:
        yield
    finally:
        _JIT_COMPILE.reset(token)


def active_jit_compile() -> bool | str:
    """The ``jit_compile`` of the enclosing ``jit_compiling`` block; Keras' "auto" outside."""
    return _JIT_COMPILE.get()


def compile_classifier(
    model: keras.Model, num_classes: int, optimizer: str, learning_rate: float,
    jit_compile: bool | str | None = None, ema_momentum: float | None = None,
) -> keras.Model:
    """Compile ``model`` for classification with accuracy as its metric.

    ``jit_compile`` None: the enclosing ``jit_compiling`` block's, else Keras' "auto".
    """
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate, ema_momentum),
        loss=loss_for(num_classes),
        metrics=["accuracy"],
        jit_compile=active_jit_compile() if jit_compile is None else jit_compile,
    )
    return model
