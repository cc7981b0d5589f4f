"""Class weights for the training loss: ``TrainingOptions.class_weight`` made into numbers.

Why: a dataset whose classes are uneven (a user's own photos usually are) trains a model
that favours its large classes, since they make up most of the loss. ``balanced`` gives
class c's examples the weight n / (C * n_c) (n training images, C classes, n_c of class c;
Keras' and scikit-learn's "balanced"), so each class adds the same total to the loss and the
weights average 1 over the training images. The counts are the training split's, read from
the prepared dataset's manifest (cheap, and the same for every training input: cached
arrays, cached views, tf.data batches). Light on purpose: no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.data.manifest import read_manifest
from pipeline.errors import PipelineError
from pipeline.training.options import CLASS_WEIGHTS


def balanced_class_weights(counts: Sequence[int]) -> dict[int, float]:
    """Label index -> n / (C * n_c) for ``counts`` (images per class, in label order).

    A class without training images gets no weight (it adds nothing to the loss anyway);
    ``C`` counts only the classes present, so the weights still average 1 per image.
    """
    present = [(label, count) for label, count in enumerate(counts) if count > 0]
    if not present:
        raise PipelineError("class weights: the training split holds no images")
    total = sum(count for _, count in present)
    return {label: total / (len(present) * count) for label, count in present}


def training_class_counts(data_dir: Path, class_names: Sequence[str]) -> list[int]:
    """Training images per class of the dataset prepared in ``data_dir``, in label order."""
    manifest = read_manifest(data_dir)
    counts = manifest["counts"]["train"]
    missing = [name for name in class_names if name not in counts]
    if missing:
        raise PipelineError(f"{data_dir}: the manifest counts no training images of class "
                            f"{missing[0]!r}; re-run `python cli.py data prepare`")
    return [int(counts[name]) for name in class_names]


def class_weights_for(
    option: str, data_dir: Path, class_names: Sequence[str]
) -> dict[int, float] | None:
    """The ``class_weight`` Keras' ``fit`` takes for ``option``; None (no weights) for none,
    and for balanced when the classes are even (every weight 1: the same training)."""
    if option == "none":
        return None
    if option == "balanced":
        weights = balanced_class_weights(training_class_counts(data_dir, class_names))
        return None if len(set(weights.values())) == 1 else weights
    raise PipelineError(f"`class_weight` {option!r}: choose one of {', '.join(CLASS_WEIGHTS)}")


def describe_weights(weights: dict[int, float], class_names: Sequence[str]) -> str:
    """One line for people: every class's weight, or their range when there are many."""
    if len(weights) <= 5:
        return ", ".join(f"{class_names[label]} {weight:.3g}"
                         for label, weight in weights.items())
    low, high = min(weights, key=weights.get), max(weights, key=weights.get)
    return (f"from {weights[low]:.3g} ({class_names[low]}) to {weights[high]:.3g} "
            f"({class_names[high]}) over {len(weights)} classes")
