"""The classification loss: cross-entropy, optionally with label smoothing, and the accuracy
that goes with it.

Label smoothing (Szegedy et al., 2016) trains toward ``1 - a + a / C`` for the true class
and ``a / C`` for each other one instead of 1 and 0, so the network is not pushed toward
ever more confident outputs on a few hundred photos it has already fitted. Mixup and CutMix
(``pipeline.training.mixing``) train on soft targets, a share per class: the loss and the
accuracy then take them as well as the class indices of validation. Light (Keras is imported
on use): the command line reads the default while it builds its options.
"""

from __future__ import annotations

from typing import Any

from pipeline.models.loss_options import NO_SMOOTHING, check_label_smoothing


def loss_for(num_classes: int, label_smoothing: float = NO_SMOOTHING, *,
             soft_targets: bool = False) -> Any:
    """The loss matching ``classifier.output_layer`` (a sigmoid for two classes, a softmax
    over more) and the integer labels of ``pipeline.data.dataset``; with ``soft_targets``
    (mixed training batches) also targets that are shares of the classes.

    Without smoothing and soft targets, Keras' own losses by name, as every model trained
    here has used. Two classes need nothing new for soft targets: binary cross-entropy takes
    any target in [0, 1]. More classes: ``SoftTargetCrossentropy``, which takes both forms.
    """
    check_label_smoothing(label_smoothing)
    if soft_targets and num_classes != 2:
        from pipeline.models.soft_target_crossentropy import SoftTargetCrossentropy

        return SoftTargetCrossentropy(label_smoothing)
    if not label_smoothing:
        return "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"
    if num_classes == 2:
        import keras

        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    from pipeline.models.smoothed_crossentropy import SmoothedSparseCategoricalCrossentropy

    return SmoothedSparseCategoricalCrossentropy(label_smoothing)


def accuracy_for(*, soft_targets: bool = False) -> Any:
    """The accuracy metric: Keras' ``"accuracy"`` by name, or with ``soft_targets`` one that
    reads mixed training targets and the class indices of validation alike
    (``DominantClassAccuracy``: Keras' choice by the first batch's shapes would misread
    validation)."""
    if not soft_targets:
        return "accuracy"
    from pipeline.models.dominant_class_accuracy import DominantClassAccuracy

    return DominantClassAccuracy()
