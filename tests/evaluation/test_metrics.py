"""Classification metrics agree with values worked out by hand."""

import numpy as np
import pytest

from pipeline.evaluation.metrics import (
    average_ranks,
    class_probabilities,
    classification_report,
    confusion_matrix,
    most_confidently_wrong,
    per_class_scores,
    predicted_classes,
    roc_auc,
)

LABELS = np.array([0, 0, 1, 1, 2, 2, 2])
PREDICTIONS = np.array([0, 1, 1, 1, 2, 0, 2])


def test_confusion_matrix_rows_are_true_classes_columns_predicted():
    expected = [[1, 1, 0],
                [0, 2, 0],
                [1, 0, 2]]
    np.testing.assert_array_equal(confusion_matrix(LABELS, PREDICTIONS, 3), expected)


def test_precision_recall_f1_per_class():
    scores = per_class_scores(confusion_matrix(LABELS, PREDICTIONS, 3))
    np.testing.assert_allclose(scores["precision"], [1 / 2, 2 / 3, 1.0])
    np.testing.assert_allclose(scores["recall"], [1 / 2, 1.0, 2 / 3])
    np.testing.assert_allclose(scores["f1"], [0.5, 0.8, 0.8])
    np.testing.assert_array_equal(scores["support"], [2, 2, 3])


def test_a_class_never_predicted_scores_zero_not_nan():
    scores = per_class_scores(confusion_matrix([0, 1], [0, 0], 2))
    np.testing.assert_allclose(scores["precision"], [0.5, 0.0])
    np.testing.assert_allclose(scores["recall"], [1.0, 0.0])
    np.testing.assert_allclose(scores["f1"], [2 / 3, 0.0])


def test_roc_auc_of_a_worked_example():
    # Of the 4 (positive, negative) pairs, 3 have the positive scored higher.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_roc_auc_counts_ties_as_half():
    # Pairs: (0.5 vs 0.5) tie = 1/2, the other three are won: 3.5 / 4.
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)
    assert roc_auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == pytest.approx(0.5)


def test_roc_auc_extremes_and_undefined_case():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc([1, 1, 1], [0.2, 0.5, 0.9]) is None


def test_roc_auc_equals_pairwise_counting_on_random_scores_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = rng.integers(0, 10, 200) / 10  # many ties
    positives, negatives = scores[labels == 1], scores[labels == 0]
    wins = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    expected = (wins + 0.5 * ties) / (len(positives) * len(negatives))
    assert roc_auc(labels, scores) == pytest.approx(expected)


def test_tied_values_share_their_average_rank():
    np.testing.assert_allclose(average_ranks([10, 20, 20, 30]), [1, 2.5, 2.5, 4])
    np.testing.assert_allclose(average_ranks([3, 1, 2]), [3, 1, 2])


def test_sigmoid_output_becomes_two_class_probabilities():
    np.testing.assert_allclose(class_probabilities([[0.8], [0.1]]), [[0.2, 0.8], [0.9, 0.1]])
    softmax = np.array([[0.2, 0.5, 0.3]])
    np.testing.assert_allclose(class_probabilities(softmax), softmax)


def test_exactly_one_half_is_class_zero_like_keras_accuracy():
    np.testing.assert_array_equal(
        predicted_classes(class_probabilities([[0.5], [0.51], [0.49]])), [0, 1, 0]
    )


def test_most_confidently_wrong_come_first():
    probabilities = class_probabilities([[0.9], [0.2], [0.6], [0.55]])
    labels = [0, 1, 1, 0]  # wrong: 0 (said 1 at 0.9), 1 (said 0 at 0.8), 3 (said 1 at 0.55)
    np.testing.assert_array_equal(most_confidently_wrong(labels, probabilities, 5), [0, 1, 3])
    np.testing.assert_array_equal(most_confidently_wrong(labels, probabilities, 2), [0, 1])


def test_report_has_roc_auc_only_for_two_classes():
    binary = classification_report([0, 1, 1], class_probabilities([[0.3], [0.8], [0.4]]),
                                   ("cat", "dog"))
    assert binary["accuracy"] == pytest.approx(2 / 3)
    assert binary["roc_auc"] == pytest.approx(1.0) and binary["roc_auc_positive_class"] == "dog"
    assert binary["confusion_matrix"] == [[1, 0], [1, 1]]
    assert binary["per_class"]["dog"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3,
                                          "support": 2}
    three = classification_report(LABELS, np.eye(3)[PREDICTIONS], ("a", "b", "c"))
    assert "roc_auc" not in three
    assert three["macro_avg"]["recall"] == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)


def test_balanced_accuracy_and_macro_f1_weigh_every_class_the_same():
    # Uneven classes: 8 of class a (all right), 2 of b (both said a), 2 of c (one right).
    labels = [0] * 8 + [1, 1] + [2, 2]
    predictions = [0] * 8 + [0, 0] + [2, 0]
    report = classification_report(labels, np.eye(3)[predictions], ("a", "b", "c"))
    assert report["accuracy"] == pytest.approx(9 / 12)
    assert report["balanced_accuracy"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    f1_a = 2 * (8 / 11) * 1.0 / (8 / 11 + 1.0)
    f1_c = 2 * 1.0 * 0.5 / 1.5
    assert report["macro_f1"] == pytest.approx((f1_a + 0.0 + f1_c) / 3)
    assert report["macro_avg"]["f1"] == report["macro_f1"]


def test_a_class_absent_from_the_split_and_never_predicted_is_not_averaged():
    # Class c has no test photo and is never predicted: like scikit-learn, it has no score.
    report = classification_report([0, 0, 1, 1], np.eye(3)[[0, 1, 1, 1]], ("a", "b", "c"))
    assert report["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert report["per_class"]["c"]["support"] == 0
    predicted_only = classification_report([0, 0], np.eye(2)[[0, 1]], ("a", "b"))
    assert predicted_only["balanced_accuracy"] == pytest.approx(0.5)  # b is not in the labels
    assert predicted_only["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)  # but was predicted
