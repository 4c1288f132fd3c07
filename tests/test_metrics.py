"""Specification of msqnet.metrics: scikit-learn parity on random data, the official Charades definition
on hand-computed cases, and the edge cases (ties, no positives, one class, NaN, shapes, empty input)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    jaccard_score,
    precision_score,
    recall_score,
    top_k_accuracy_score,
)

from msqnet.metrics import (
    binary_average_precision,
    chance_levels,
    chance_map,
    charades_map,
    compute_metrics,
    example_based,
    expected_random_ap,
    mean_average_precision,
    metric_keys,
    metric_title,
    micro_macro_f1,
    reference_batch_micro_ap,
    segment_map,
    topk_accuracy,
)

SEEDS = range(25)


def random_case(seed: int, *, decimals: int = 1, min_classes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Scores rounded to ``decimals`` (so many ties) and sparse multi-hot targets of random size."""
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(2, 80)), int(rng.integers(min_classes, 15))
    scores = np.round(rng.normal(size=(n, c)), decimals)
    targets = (rng.random((n, c)) < rng.uniform(0.05, 0.5)).astype(np.int64)
    return scores, targets


# ----------------------------------------------------------------------------------------- macro mAP


@pytest.mark.parametrize("seed", SEEDS)
def test_map_equals_sklearn_average_precision_mean_over_classes_with_positives(seed):
    scores, targets = random_case(seed)
    with_pos = np.flatnonzero(targets.sum(axis=0) > 0)
    if with_pos.size == 0:
        pytest.skip("this draw has no positive")
    expected = [average_precision_score(targets[:, c], scores[:, c]) for c in with_pos]
    result = mean_average_precision(scores, targets)
    assert result.map == pytest.approx(np.mean(expected), abs=1e-9)
    np.testing.assert_allclose(result.per_class_ap[with_pos], expected, atol=1e-9)
    assert result.num_classes_used == with_pos.size


def test_map_gives_nan_ap_to_classes_without_positives_and_leaves_them_out_of_the_mean():
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.4], [0.1, 0.7, 0.5]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    result = mean_average_precision(scores, targets)
    assert math.isnan(result.per_class_ap[2])
    assert result.num_classes_used == 2
    # class 0: its positive ranks first -> 1; class 1: positive ranks first (0.8 > 0.7 > 0.1) -> 1
    assert result.map == pytest.approx(1.0)


def test_map_treats_tied_scores_as_one_threshold_so_row_order_of_ties_does_not_matter():
    scores = np.array([[0.5], [0.5], [0.5], [0.2]])
    targets = np.array([[0], [1], [0], [1]])
    # threshold 0.5: precision 1/3 at recall 1/2; threshold 0.2: precision 2/4 at recall 1 -> 1/6 + 1/4
    assert mean_average_precision(scores, targets).map == pytest.approx(1 / 6 + 1 / 4)
    assert mean_average_precision(scores[[1, 0, 2, 3]], targets[[1, 0, 2, 3]]).map == pytest.approx(1 / 6 + 1 / 4)


def test_ap_of_all_tied_scores_is_the_fraction_of_positives():
    assert binary_average_precision(np.zeros(8), np.array([1, 0, 0, 1, 0, 0, 0, 1], dtype=bool)) == pytest.approx(3 / 8)


def test_map_of_a_single_class_is_that_class_ap():
    scores, targets = random_case(3)
    targets[0, 0] = 1
    assert mean_average_precision(scores[:, :1], targets[:, :1]).map == pytest.approx(
        average_precision_score(targets[:, 0], scores[:, 0]), abs=1e-12
    )


def test_map_ranks_minus_infinity_scores_last_like_a_very_low_finite_score():
    scores, targets = random_case(5)
    targets[0] = 1
    scores[::3] = -np.inf
    finite = np.where(np.isinf(scores), scores[np.isfinite(scores)].min() - 1, scores)
    assert mean_average_precision(scores, targets).map == pytest.approx(mean_average_precision(finite, targets).map)


def test_map_raises_when_no_class_has_a_positive():
    with pytest.raises(ValueError, match="none of the 3 classes has a positive"):
        mean_average_precision(np.ones((4, 3)), np.zeros((4, 3)))


# ----------------------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    "metric",
    [
        mean_average_precision,
        lambda s, t: charades_map(s, t),
        lambda s, t: example_based(s, t),
        lambda s, t: micro_macro_f1(s, t),
        lambda s, t: reference_batch_micro_ap(s, t, 2),
    ],
    ids=["map", "charades_map", "example_based", "micro_macro_f1", "reference_micro_ap"],
)
def test_every_metric_refuses_nan_scores_and_names_how_many_rows_and_classes(metric):
    scores = np.full((5, 4), 0.5)
    scores[1, 2] = scores[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN in 2 row\(s\) and 1 class\(es\)"):
        metric(scores, np.eye(5, 4))


def test_shape_mismatch_between_scores_and_targets_raises():
    with pytest.raises(ValueError, match=r"shape mismatch: scores \(4, 3\) vs targets \(4, 2\)"):
        mean_average_precision(np.zeros((4, 3)), np.zeros((4, 2)))


def test_empty_input_raises():
    with pytest.raises(ValueError, match="empty input"):
        mean_average_precision(np.zeros((0, 3)), np.zeros((0, 3)))


def test_one_dimensional_scores_are_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="expected a 2-D array"):
        mean_average_precision(np.zeros(4), np.zeros(4))


def test_targets_other_than_zero_and_one_raise_with_their_position():
    targets = np.eye(3)
    targets[2, 1] = 2
    with pytest.raises(ValueError, match="found 2.0 at row 2, class 1"):
        mean_average_precision(np.zeros((3, 3)), targets)


# ----------------------------------------------------------------------------------------- AK segments


def test_segment_map_averages_each_segment_and_skips_classes_without_positives():
    ap = np.array([0.2, 0.4, np.nan, 0.9, 1.0])
    result = segment_map(ap, {"head": [0, 1, 2], "middle": [3], "tail": [4, 0]})
    assert result == pytest.approx({"head": 0.3, "middle": 0.9, "tail": 0.6})
    assert list(result) == ["head", "middle", "tail"]


def test_segment_map_raises_for_an_out_of_range_class_and_for_a_segment_without_positives():
    ap = np.array([0.2, np.nan])
    with pytest.raises(ValueError, match="class id 7 out of range for 2 classes"):
        segment_map(ap, {"head": [0, 7]})
    with pytest.raises(ValueError, match="segment 'tail': none of its 1 classes has a positive"):
        segment_map(ap, {"head": [0], "tail": [1]})


# ----------------------------------------------------------------------------------------- Charades


def official_charades_ap(conf: np.ndarray, labels: np.ndarray) -> float:
    """Line-by-line reading of THUMOSeventclspr in Charades_v1_classify.m (stable sort of -conf)."""
    order = sorted(range(len(conf)), key=lambda i: -conf[i])  # Python's sort is stable, as MATLAB's
    tp = fp = 0
    total = 0.0
    for i in order:
        if labels[i] == 1:
            tp += 1
            total += tp / (tp + fp)
        else:
            fp += 1
    return total / sum(labels)


def test_charades_ap_hand_computed_without_ties():
    # class 0 ranking 0.9(+) 0.8(-) 0.7(+) 0.1(-): precisions at positives 1/1, 2/3 -> AP 5/6
    # class 1 ranking 0.6(-) 0.5(+) 0.4(-) 0.3(+): precisions at positives 1/2, 2/4 -> AP 1/2
    scores = np.array([[0.9, 0.6], [0.8, 0.5], [0.7, 0.4], [0.1, 0.3]])
    targets = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
    result = charades_map(scores, targets)
    np.testing.assert_allclose(result.per_class_ap, [5 / 6, 1 / 2])
    assert result.map == pytest.approx((5 / 6 + 1 / 2) / 2)
    assert result.wap == pytest.approx((2 * 5 / 6 + 2 * 1 / 2) / 4)  # 2 positives each: equals mAP


def test_charades_ties_keep_row_order_unlike_sklearn():
    # every score tied at 0.5, so the ranking is the row order 0, 1, 2.
    # class 0: positives in rows 0 and 2 -> ranks 1 and 3 -> (1/1 + 2/3) / 2 = 5/6
    # class 1: positive in row 1 -> rank 2 -> 1/2
    scores = np.full((3, 2), 0.5)
    targets = np.array([[1, 0], [0, 1], [1, 0]])
    np.testing.assert_allclose(charades_map(scores, targets).per_class_ap, [5 / 6, 1 / 2])
    # sklearn sees one threshold holding every row: AP = the fraction of positives (2/3 and 1/3)
    np.testing.assert_allclose(mean_average_precision(scores, targets).per_class_ap, [2 / 3, 1 / 3])
    # and for Charades the order of tied rows matters: row 1 first puts class 1's positive at rank 1
    np.testing.assert_allclose(charades_map(scores, targets[[1, 0, 2]]).per_class_ap, [(1 / 2 + 2 / 3) / 2, 1.0])


def test_charades_scores_rows_without_actions_as_minus_infinity_whatever_they_were_given():
    # row 0 has no action but the highest score; the script never reads it, so it sinks to the bottom:
    # ranking r1 0.5(+), r2 0.1(-), r0 -inf(-) -> AP 1.  sklearn-style AP would rank r0 first -> 1/2.
    scores = np.array([[0.9, 0.0], [0.5, 0.2], [0.1, 0.3]])
    targets = np.array([[0, 0], [1, 0], [0, 1]])
    result = charades_map(scores, targets)
    assert result.per_class_ap[0] == pytest.approx(1.0)
    assert mean_average_precision(scores, targets).per_class_ap[0] == pytest.approx(0.5)


def test_charades_missing_rows_at_minus_infinity_tie_with_no_action_rows_in_row_order():
    # class 0: r0 no action (-inf), r1 positive but missing from the submission (-inf), r2 negative 0.3.
    # ranking: r2 (0.3, -), then the -inf tie in row order r0 (-), r1 (+) -> precision 1/3 -> AP 1/3
    scores = np.array([[0.0, 0.0], [-np.inf, -np.inf], [0.3, 0.9]])
    targets = np.array([[0, 0], [1, 0], [0, 1]])
    result = charades_map(scores, targets)
    assert result.per_class_ap[0] == pytest.approx(1 / 3)
    assert result.per_class_ap[1] == pytest.approx(1.0)


def test_charades_wap_weights_each_class_by_its_positives():
    # class 0: 1 positive ranked 1st -> AP 1.  class 1: 3 positives at ranks 2, 3, 4 (row 0 is a
    # negative with the top score) -> (1/2 + 2/3 + 3/4) / 3 = 23/36.
    scores = np.array([[0.9, 0.9], [0.1, 0.8], [0.2, 0.7], [0.3, 0.6]])
    targets = np.array([[1, 0], [0, 1], [0, 1], [0, 1]])
    result = charades_map(scores, targets)
    np.testing.assert_allclose(result.per_class_ap, [1.0, 23 / 36])
    assert result.map == pytest.approx((1 + 23 / 36) / 2)
    assert result.wap == pytest.approx((1 * 1 + 3 * 23 / 36) / 4)


def test_charades_class_without_positives_is_nan_and_excluded_from_map_and_wap():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.4]])
    targets = np.array([[1, 0, 0], [0, 1, 0]])
    result = charades_map(scores, targets)
    assert math.isnan(result.per_class_ap[2])
    assert result.num_classes_used == 2
    assert result.map == pytest.approx(1.0) and result.wap == pytest.approx(1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_charades_map_matches_a_line_by_line_reading_of_the_official_script(seed):
    scores, targets = random_case(seed, decimals=1)
    scores[::4, 1::2] = -np.inf  # some "missing" scores, tied with the no-action rows
    targets[:, 0] = 0
    targets[0, 0] = targets[-1, 0] = 1
    official_scores = np.where(targets.any(axis=1, keepdims=True), scores, -np.inf)
    expected = np.array(
        [official_charades_ap(official_scores[:, c], targets[:, c]) if targets[:, c].any() else np.nan
         for c in range(scores.shape[1])]
    )
    result = charades_map(scores, targets)
    np.testing.assert_allclose(result.per_class_ap, expected, atol=1e-12)
    assert result.map == pytest.approx(np.nanmean(expected), abs=1e-12)


# ----------------------------------------------------------------------------------------- top-k


@pytest.mark.parametrize("seed", SEEDS)
def test_topk_equals_sklearn_with_ties_broken_toward_the_lower_class_index(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(2, 60)), int(rng.integers(3, 12))
    scores = np.round(rng.normal(size=(n, c)), 1)
    labels = rng.integers(0, c, n)
    ours = topk_accuracy(scores, labels, ks=(1, 2))
    # sklearn breaks ties toward the HIGHER index; mirroring the class order turns that into ours.
    for k in (1, 2):
        expected = top_k_accuracy_score(c - 1 - labels, scores[:, ::-1], k=k, labels=np.arange(c))
        assert ours[f"top{k}"] == pytest.approx(expected, abs=1e-12)


def test_topk_tie_goes_to_the_lower_class_index():
    scores = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    assert topk_accuracy(scores, np.array([1, 0]), ks=(1, 2)) == {"top1": 0.5, "top2": 1.0}


def test_topk_refuses_k_above_the_number_of_classes_and_out_of_range_labels():
    with pytest.raises(ValueError, match="top-5 accuracy needs 1 <= k <= number of classes \\(3\\)"):
        topk_accuracy(np.zeros((2, 3)), np.array([0, 1]), ks=(5,))
    with pytest.raises(ValueError, match="label 3 at row 1 is out of range for 3 classes"):
        topk_accuracy(np.zeros((2, 3)), np.array([0, 3]), ks=(1,))
    with pytest.raises(ValueError, match="integer class ids"):
        topk_accuracy(np.zeros((2, 3)), np.array([0.0, 1.0]), ks=(1,))


# ----------------------------------------------------------------------------------------- thresholded


@pytest.mark.parametrize("seed", SEEDS)
def test_example_based_and_label_f1_equal_sklearn_with_zero_division_one(seed):
    scores, targets = random_case(seed, decimals=1, min_classes=2)
    probs = np.round(1 / (1 + np.exp(-scores)), 1)  # rounding puts some probabilities exactly at 0.5
    pred = (probs > 0.5).astype(int)
    eb = example_based(probs, targets, threshold=0.5)
    f1 = micro_macro_f1(probs, targets, threshold=0.5)
    assert eb["f1"] == pytest.approx(f1_score(targets, pred, average="samples", zero_division=1), abs=1e-9)
    assert eb["precision"] == pytest.approx(precision_score(targets, pred, average="samples", zero_division=1), abs=1e-9)
    assert eb["recall"] == pytest.approx(recall_score(targets, pred, average="samples", zero_division=1), abs=1e-9)
    assert eb["accuracy"] == pytest.approx(jaccard_score(targets, pred, average="samples", zero_division=1), abs=1e-9)
    assert eb["subset_accuracy"] == pytest.approx(accuracy_score(targets, pred), abs=1e-9)
    assert f1["micro_f1"] == pytest.approx(f1_score(targets, pred, average="micro", zero_division=1), abs=1e-9)
    assert f1["macro_f1"] == pytest.approx(f1_score(targets, pred, average="macro", zero_division=1), abs=1e-9)


def test_threshold_is_strict_and_an_empty_prediction_of_an_empty_truth_is_perfect():
    probs = np.array([[0.5, 0.2], [0.9, 0.1]])
    targets = np.array([[0, 0], [1, 0]])
    # row 0: 0.5 is not > 0.5 -> predicts nothing, truth empty -> all 1; row 1: exact -> all 1
    assert example_based(probs, targets) == {
        "f1": 1.0, "precision": 1.0, "recall": 1.0, "accuracy": 1.0, "subset_accuracy": 1.0
    }
    assert example_based(probs, targets, threshold=0.4)["subset_accuracy"] == 0.5


# ----------------------------------------------------------------------------------------- reference micro AP


@pytest.mark.parametrize("batch_size", [1, 3, 8, 1000])
def test_reference_micro_ap_is_the_batch_size_weighted_mean_of_per_batch_pooled_ap(batch_size):
    scores, targets = random_case(11)
    targets[:, 0] = 1  # every batch has a positive
    per_batch, sizes = [], []
    for start in range(0, len(scores), batch_size):
        s, t = scores[start : start + batch_size], targets[start : start + batch_size]
        per_batch.append(average_precision_score(t.ravel(), s.ravel()))
        sizes.append(len(s))
    expected = np.average(per_batch, weights=sizes)
    assert reference_batch_micro_ap(scores, targets, batch_size) == pytest.approx(expected, abs=1e-9)


def test_reference_micro_ap_skips_batches_without_positives_with_a_warning():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.4, 0.6]])
    targets = np.array([[1, 0], [0, 1], [0, 0], [0, 0]])
    with pytest.warns(UserWarning, match="skipped 1 batch"):
        value = reference_batch_micro_ap(scores, targets, batch_size=2)
    assert value == pytest.approx(1.0)  # the first batch ranks both positives on top


# ----------------------------------------------------------------------------------------- compute_metrics


def test_compute_metrics_dispatches_by_name_to_the_functions():
    scores, targets = random_case(2, min_classes=3)
    targets[0] = 1
    out = compute_metrics("map, charades_map,f1", scores, targets, threshold=0.0)
    assert out["map"] == mean_average_precision(scores, targets).map
    assert out["charades_map"] == charades_map(scores, targets).map
    assert out["charades_wap"] == charades_map(scores, targets).wap
    assert out["f1"] == example_based(scores, targets, 0.0)["f1"]
    assert out["macro_f1"] == micro_macro_f1(scores, targets, 0.0)["macro_f1"]
    assert set(out) == {
        "map", "charades_map", "charades_wap", "f1", "example_precision", "example_recall", "example_accuracy",
        "subset_accuracy", "micro_f1", "macro_f1",
    }


def test_compute_metrics_topk_takes_one_hot_targets_and_refuses_multi_label_rows():
    scores = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.3, 0.3, 0.4]])
    one_hot = np.eye(3)[[1, 1, 2]]
    assert compute_metrics(["top1", "top2"], scores, one_hot) == {"top1": 2 / 3, "top2": 1.0}
    with pytest.raises(ValueError, match="exactly one label per row; row 0 has 2"):
        compute_metrics("top1", scores, np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]]))


def test_compute_metrics_ak_segments_and_reference_ap_need_their_arguments():
    scores, targets = random_case(4, min_classes=4)
    targets[0] = 1
    with pytest.raises(ValueError, match="needs segments"):
        compute_metrics("ak_segments", scores, targets)
    with pytest.raises(ValueError, match="needs batch_size"):
        compute_metrics("reference_micro_ap", scores, targets)
    out = compute_metrics("ak_segments", scores, targets, segments={"head": [0, 1], "tail": [2, 3]})
    assert set(out) == {"map_head", "map_tail"}


def test_compute_metrics_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown metric 'mAP@5'"):
        compute_metrics("mAP@5", np.zeros((2, 2)), np.eye(2))


# ----------------------------------------------------------------------------------------- the registry

_EVERY_METRIC = ["map", "charades_map", "f1", "reference_micro_ap", "ak_segments", "top1", "top3"]


@pytest.mark.parametrize("name", _EVERY_METRIC)
def test_each_metric_declares_exactly_the_keys_it_produces(name):
    scores = np.random.default_rng(0).random((6, 4))
    targets = np.eye(4, dtype=np.int64)[[0, 1, 2, 3, 0, 1]]
    segments = {"head": [0, 1], "tail": [2, 3]}
    out = compute_metrics(name, scores, targets, batch_size=3, segments=segments)
    assert metric_keys(name, segments) == list(out)


def test_metric_keys_of_ak_segments_need_the_segments_as_its_computation_does():
    with pytest.raises(ValueError, match="needs segments"):
        metric_keys(["map", "ak_segments"])


def test_chance_levels_are_the_exact_expected_values_of_random_scores():
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0]])
    assert chance_levels(["map", "top2", "f1"], targets) == {"map": chance_map(targets), "top2": 2 / 3}
    assert chance_map(targets) == pytest.approx(np.mean([expected_random_ap(4, 2), expected_random_ap(4, 1)]))
    assert chance_levels(["map"], np.zeros((3, 2))) == {}  # no positives: no chance level


def test_a_given_per_class_ap_is_used_not_computed_again():
    scores, targets = random_case(5, min_classes=3)
    targets[0] = 1
    given = np.array([0.5, np.nan, 0.25, *[0.0] * (targets.shape[1] - 3)])
    out = compute_metrics(["map", "ak_segments"], scores, targets, segments={"a": [0, 1, 2]}, per_class_ap=given)
    assert out == {"map": np.nanmean(given), "map_a": 0.375}


def test_keys_have_readable_titles():
    assert metric_title("map") == "macro mAP" and metric_title("top5") == "top-5 accuracy"
    assert metric_title("map_tail") == "mAP, tail classes" and metric_title("micro_f1") == "micro_f1"
