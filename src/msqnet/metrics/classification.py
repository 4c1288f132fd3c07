"""Thresholded and ranked accuracy metrics: top-k accuracy, and example-based / micro / macro F1.

Top-k accuracy for single-label sets such as HMDB51 and THUMOS14; F1 at a score threshold for
Hockey-style multi-label accuracy.

All values are fractions in [0, 1], not percentages.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ._checks import check_scores, check_scores_and_targets

__all__ = ["topk_accuracy", "example_based", "micro_macro_f1", "binarize"]


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Fraction of rows whose true class is among the k highest scores, for each k in ``ks``.

    Ties are broken by class index, lower index first (as ``np.argmax`` does for k=1): the true class's
    rank is the number of classes scoring strictly higher plus the number of lower-indexed classes
    scoring the same.

    Args:
        scores: ``(N, C)`` scores.
        labels: ``(N,)`` integer class ids in ``[0, C)``.
        ks: the k values; each must satisfy ``1 <= k <= C``.

    Returns:
        ``{"top{k}": accuracy}`` for each k.
    """
    s = check_scores(scores)
    y = np.asarray(labels)
    if y.shape != (s.shape[0],):
        raise ValueError(f"shape mismatch: scores {s.shape} vs labels {y.shape}; labels must be (N,) class ids")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids, got dtype {y.dtype}")
    out_of_range = (y < 0) | (y >= s.shape[1])
    if out_of_range.any():
        r = int(np.flatnonzero(out_of_range)[0])
        raise ValueError(f"label {y[r]} at row {r} is out of range for {s.shape[1]} classes")
    for k in ks:
        if not 1 <= k <= s.shape[1]:
            raise ValueError(f"top-{k} accuracy needs 1 <= k <= number of classes ({s.shape[1]})")
    true_score = s[np.arange(s.shape[0]), y][:, None]  # (N, 1)
    lower_index = np.arange(s.shape[1])[None, :] < y[:, None]  # (N, C)
    rank = np.sum(s > true_score, axis=1) + np.sum((s == true_score) & lower_index, axis=1)  # (N,) 0 = best
    return {f"top{k}": float(np.mean(rank < k)) for k in ks}


def binarize(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Predicted label set: ``score > threshold`` (strict, as torchmetrics binarises)."""
    return np.asarray(scores) > threshold


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0/0 counted as 1 (nothing to find and nothing wrongly claimed)."""
    return np.divide(num, den, out=np.ones(np.shape(num), dtype=np.float64), where=den > 0)


def example_based(scores: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Example-based multi-label metrics at a threshold, averaged over rows.

    A class is predicted when ``score > threshold`` (pass probabilities with 0.5, or logits with 0).
    Per row with true set Y and predicted set Z: precision ``|Y&Z|/|Z|``, recall ``|Y&Z|/|Y|``,
    F1 ``2|Y&Z|/(|Y|+|Z|)``, accuracy (Jaccard) ``|Y&Z|/|Y|Z|``, subset accuracy ``Y == Z``. A ratio
    0/0 counts as 1 (an empty prediction for an empty truth is perfect; an empty prediction has no false
    positives), matching scikit-learn's ``average='samples', zero_division=1``.

    Returns:
        ``{"f1", "precision", "recall", "accuracy", "subset_accuracy"}``.
    """
    s, t = check_scores_and_targets(scores, targets)
    pred = binarize(s, threshold)
    inter = np.sum(pred & t, axis=1)  # (N,)
    n_pred, n_true = pred.sum(axis=1), t.sum(axis=1)
    union = np.sum(pred | t, axis=1)
    return {
        "f1": float(np.mean(_ratio(2 * inter, n_pred + n_true))),
        "precision": float(np.mean(_ratio(inter, n_pred))),
        "recall": float(np.mean(_ratio(inter, n_true))),
        "accuracy": float(np.mean(_ratio(inter, union))),
        "subset_accuracy": float(np.mean(np.all(pred == t, axis=1))),
    }


def micro_macro_f1(scores: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Label-based F1 at a threshold: micro (all labels pooled) and macro (mean of per-class F1).

    F1 = ``2TP / (2TP + FP + FN)``; a class with no positives and no predictions (0/0) has F1 1, as
    scikit-learn's ``f1_score(..., zero_division=1)``.

    Returns:
        ``{"micro_f1", "macro_f1"}``.
    """
    s, t = check_scores_and_targets(scores, targets)
    pred = binarize(s, threshold)
    tp = np.sum(pred & t, axis=0)  # (C,)
    fp = np.sum(pred & ~t, axis=0)
    fn = np.sum(~pred & t, axis=0)
    micro = _ratio(np.array(2 * tp.sum()), np.array(2 * tp.sum() + fp.sum() + fn.sum()))
    return {"micro_f1": float(micro), "macro_f1": float(np.mean(_ratio(2 * tp, 2 * tp + fp + fn)))}
