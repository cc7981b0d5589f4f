"""Classification metrics in plain numpy: confusion matrix, precision/recall/F1, balanced
accuracy, ROC AUC.

Labels are class indices (0..C-1). Model outputs become per-class probabilities with
``class_probabilities``: a sigmoid's single column ``p`` (probability of class 1) turns
into ``[1 - p, p]``, so every caller works with (N, C) whatever the output layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """(N, C) probabilities from a model's outputs: (N, 1) sigmoid or (N, C) softmax."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if outputs.shape[1] == 1:
        return np.hstack([1.0 - outputs, outputs])
    return outputs


def predicted_classes(probabilities: np.ndarray) -> np.ndarray:
    """Index of the most probable class; a tie goes to the lower index.

    For two classes that is ``p > 0.5`` for class 1, the threshold Keras' accuracy uses.
    """
    return np.argmax(probabilities, axis=1)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, int), np.asarray(predictions, int)), 1)
    return matrix


def per_class_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix.

    A ratio whose denominator is zero (a class never predicted, or never present)
    is 0.0 rather than NaN, so the JSON stays valid and averages stay defined.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positives = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = _safe_divide(true_positives, predicted)
    recall = _safe_divide(true_positives, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(int)}


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve for binary ``labels`` (1 = positive) and ``scores``.

    The rank statistic (Mann-Whitney U): the probability that a random positive scores
    above a random negative, ties counting one half (tied scores get their average
    rank). None when only one class is present, where the area is undefined.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return None
    ranks = average_ranks(scores)
    u = ranks[labels].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start index of each run of equal values, and the run each sorted position belongs to.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    run_of_position = np.repeat(np.arange(len(starts)), ends - starts)
    ranks = np.empty(len(values))
    ranks[order] = mean_rank[run_of_position]
    return ranks


def most_confidently_wrong(
    labels: np.ndarray, probabilities: np.ndarray, count: int
) -> np.ndarray:
    """Indices of up to ``count`` misclassified samples, most confident wrong answer first."""
    predictions = predicted_classes(probabilities)
    wrong = np.flatnonzero(predictions != np.asarray(labels))
    confidence = probabilities[wrong, predictions[wrong]]
    return wrong[np.argsort(-confidence, kind="mergesort")][: max(count, 0)]


def classification_report(
    labels: np.ndarray, probabilities: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, per-class scores, confusion matrix, ROC AUC.

    With uneven classes accuracy mostly measures the largest ones, so two numbers that weigh
    every class the same stand beside it: ``balanced_accuracy``, the mean recall of the
    classes present in ``labels``, and ``macro_f1``, the mean F1 of the classes present in
    ``labels`` or predicted (scikit-learn's definitions; a class absent from the split and
    never predicted has no score to average). ``macro_avg`` averages over the same classes.
    ROC AUC only for two classes.
    """
    labels = np.asarray(labels, dtype=int)
    predictions = predicted_classes(probabilities)
    matrix = confusion_matrix(labels, predictions, len(class_names))
    scores = per_class_scores(matrix)
    present = (matrix.sum(axis=1) + matrix.sum(axis=0)) > 0
    in_labels = matrix.sum(axis=1) > 0
    macro = {key: float(np.mean(scores[key][present])) if present.any() else 0.0
             for key in ("precision", "recall", "f1")}
    report: dict[str, Any] = {
        "accuracy": float(np.mean(predictions == labels)) if len(labels) else 0.0,
        "balanced_accuracy": (float(np.mean(scores["recall"][in_labels]))
                              if in_labels.any() else 0.0),
        "macro_f1": macro["f1"],
        "per_class": {
            name: {key: scores[key][i].item() for key in ("precision", "recall", "f1", "support")}
            for i, name in enumerate(class_names)
        },
        "macro_avg": macro,
        "confusion_matrix": matrix.tolist(),
    }
    if len(class_names) == 2:
        report["roc_auc"] = roc_auc(labels == 1, probabilities[:, 1])
        report["roc_auc_positive_class"] = class_names[1]
    return report


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out
