"""Decision thresholds: F1-optimal per class on validation predictions, and detections with them."""
from __future__ import annotations

import numpy as np

from msqnet.inference.decisions import label_decisions
from msqnet.metrics.thresholds import DecisionThresholds, choose_decision_thresholds, f1_optimal_thresholds


def test_the_threshold_separates_the_positives_halfway_between_the_scores():
    scores = np.array([[0.9], [0.8], [0.3], [0.2]])
    targets = np.array([[1], [1], [0], [0]])
    (cut,) = f1_optimal_thresholds(scores, targets)
    assert cut.threshold == 0.55 and (cut.f1, cut.precision, cut.recall) == (1.0, 1.0, 1.0)


def test_the_threshold_maximises_f1_when_the_classes_overlap():
    # Cuts after 1..5 clips give F1 2/4, 2/5, 4/6, 6/7, 6/8: the best keeps 4 clips, one a negative.
    scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.1]])
    targets = np.array([[1], [0], [1], [1], [0]])
    (cut,) = f1_optimal_thresholds(scores, targets)
    assert cut.threshold == 0.35 and cut.f1 == 6 / 7 and (cut.precision, cut.recall) == (0.75, 1.0)


def test_tied_scores_are_kept_or_left_out_together():
    scores = np.array([[0.5], [0.5], [0.2]])
    targets = np.array([[1], [0], [0]])
    (cut,) = f1_optimal_thresholds(scores, targets)
    assert cut.threshold == 0.35 and cut.precision == 0.5


def test_a_class_without_positives_gets_no_threshold():
    decisions = choose_decision_thresholds(np.array([[0.9, 0.1], [0.2, 0.3]]), np.array([[1, 0], [0, 0]]),
                                           ["a", "b"], "val")
    assert decisions.thresholds == {"a": 0.55} and decisions.split == "val" and decisions.num_clips == 2


class _Model:
    decision_thresholds = DecisionThresholds({"a": 0.5, "b": 0.2}, "val", 10, {"a": 1.0, "b": 0.5})


def test_labels_are_detected_above_their_own_threshold_and_unknown_names_never():
    d = label_decisions(_Model(), ["a", "b", "new name"])
    assert d.calibrated and "val" in d.source
    assert d.detected(np.array([0.4, 0.3, 0.99])).tolist() == [False, True, False]


def test_a_given_threshold_overrides_every_label():
    d = label_decisions(_Model(), ["a", "b"], threshold=0.35)
    assert d.detected(np.array([0.4, 0.3])).tolist() == [True, False] and "0.35" in d.source


def test_a_model_without_thresholds_is_uncalibrated_and_detects_nothing():
    d = label_decisions(object(), ["a", "b"])
    assert not d.calibrated and d.source == "uncalibrated" and not d.detected(np.array([1.0, 1.0])).any()
