"""The classification loss: cross-entropy, optionally with label smoothing.

Label smoothing (Szegedy et al., 2016) trains toward ``1 - a + a / C`` for the true class
and ``a / C`` for each other one instead of 1 and 0, so the network is not pushed toward
ever more confident outputs on a few hundred photos it has already fitted. Light (Keras is
imported on use): the command line reads the default while it builds its options.
"""

from __future__ import annotations

from typing import Any

from pipeline.models.loss_options import NO_SMOOTHING, check_label_smoothing


def loss_for(num_classes: int, label_smoothing: float = NO_SMOOTHING) -> Any:
    """The loss matching ``classifier.output_layer`` (a sigmoid for two classes, a softmax
    over more) and the integer labels of ``pipeline.data.dataset``.

    Without smoothing, Keras' own losses by name, as every model trained here has used.
    """
    check_label_smoothing(label_smoothing)
    if not label_smoothing:
        return "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"
    if num_classes == 2:
        import keras

        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    from pipeline.models.smoothed_crossentropy import SmoothedSparseCategoricalCrossentropy

    return SmoothedSparseCategoricalCrossentropy(label_smoothing)
