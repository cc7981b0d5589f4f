"""What every classifier here shares: its output layer, loss and compilation."""

from __future__ import annotations

import keras

from pipeline.errors import PipelineError

OPTIMIZERS = ("rmsprop", "adam", "adamw", "sgd")


def output_layer(num_classes: int, name: str = "predictions") -> keras.layers.Dense:
    """One sigmoid unit for two classes, a softmax over N otherwise.

    The output is float32 even under mixed precision, so losses stay stable.
    """
    if num_classes < 2:
        raise PipelineError(f"a classifier needs at least 2 classes, the dataset has {num_classes}")
    if num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name=name)
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=name)


def loss_for(num_classes: int) -> str:
    """The loss matching ``output_layer`` and the labels of ``pipeline.data.dataset``."""
    return "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """An optimizer by name, with a clear error for names we do not offer."""
    if learning_rate <= 0:
        raise PipelineError(f"--lr must be positive, got {learning_rate}")
    factories = {
        "rmsprop": keras.optimizers.RMSprop,
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9),
    }
    if name not in factories:
        raise PipelineError(f"--optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    return factories[name](learning_rate=learning_rate)


def compile_classifier(
    model: keras.Model, num_classes: int, optimizer: str, learning_rate: float, jit_compile="auto"
) -> keras.Model:
    """Compile ``model`` for classification with accuracy as its metric."""
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss=loss_for(num_classes),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model
