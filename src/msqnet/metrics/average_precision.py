"""Average precision: per-class AP, macro mAP, segment means, and the reference's batch-averaged micro AP.

Per-class AP as scikit-learn defines it, macro mAP as PySlowFast / Animal Kingdom report it,
head/middle/tail segment means, and the MSQNet reference's batch-averaged micro AP.

AP here is the step-wise (non-interpolated) area under the precision-recall curve,
``AP = sum_k (R_k - R_{k-1}) * P_k`` over the distinct score thresholds in decreasing order, exactly
``sklearn.metrics.average_precision_score``. Rows with tied scores form ONE threshold, so AP does not
depend on the order of tied rows. Scores may be ``+-inf`` (e.g. a clip missing from a predictions file);
NaN scores raise ``ValueError``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..utils import quote
from ._checks import check_scores_and_targets

__all__ = [
    "MAPResult",
    "binary_average_precision",
    "per_class_average_precision",
    "map_of_per_class_ap",
    "mean_average_precision",
    "segment_map",
    "reference_batch_micro_ap",
]


@dataclass(frozen=True)
class MAPResult:
    """Macro mAP over the classes that have positives.

    Args:
        map: plain mean of ``per_class_ap`` over the classes with at least one positive.
        per_class_ap: ``(C,)`` AP of every class; NaN for a class without positives.
        num_classes_used: how many classes entered the mean.
    """

    map: float
    per_class_ap: np.ndarray
    num_classes_used: int


def binary_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """AP of one class from ``(N,)`` scores and ``(N,)`` bool targets; NaN when there is no positive.

    Inputs are assumed validated (finite or infinite, never NaN).
    """
    num_pos = int(np.count_nonzero(targets))
    if num_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    tp = np.cumsum(targets[order])
    # A run of equal scores is one threshold: precision and recall are read at the run's last row.
    run_ends = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    tp_at = tp[run_ends]
    precision = tp_at / (run_ends + 1)
    new_positives = np.diff(tp_at, prepend=0)
    return float(np.sum(new_positives * precision) / num_pos)


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> MAPResult:
    """Macro mAP as PySlowFast's ``get_map`` (Animal Kingdom): per-class sklearn AP, classes without
    positives dropped, plain mean of the rest.

    Args:
        scores: ``(N, C)`` real scores (logits or probabilities; only their order matters).
        targets: ``(N, C)`` in {0, 1}.

    Raises:
        ValueError: shape mismatch, empty input, NaN scores, non-binary targets, or no class with a
            positive at all (the mean would be over nothing).
    """
    per_class = per_class_average_precision(scores, targets)
    value = map_of_per_class_ap(per_class, num_rows=np.shape(targets)[0])
    return MAPResult(map=value, per_class_ap=per_class, num_classes_used=int((~np.isnan(per_class)).sum()))


def per_class_average_precision(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``(C,)`` AP of every class of ``(N, C)`` scores and {0, 1} targets; NaN for a class without positives.

    Raises:
        ValueError: shape mismatch, empty input, NaN scores or non-binary targets.
    """
    s, t = check_scores_and_targets(scores, targets)
    return np.array([binary_average_precision(s[:, c], t[:, c]) for c in range(s.shape[1])])


def map_of_per_class_ap(per_class_ap: np.ndarray, *, num_rows: int) -> float:
    """Macro mAP from per-class AP: the plain mean over the classes with positives (not NaN).

    Raises:
        ValueError: no class has a positive among the ``num_rows`` rows (the mean would be over nothing).
    """
    used = ~np.isnan(per_class_ap)
    if not used.any():
        raise ValueError(f"mAP is undefined: none of the {per_class_ap.size} classes has a positive among {num_rows} rows")
    return float(per_class_ap[used].mean())


def segment_map(per_class_ap: np.ndarray, segments: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """Mean AP within each class segment (Animal Kingdom's head / middle / tail).

    Classes whose AP is NaN (no positives) are left out of their segment's mean, as they are left out
    of the overall mAP.

    Args:
        per_class_ap: ``(C,)`` from :func:`mean_average_precision`.
        segments: segment name -> class ids, e.g. ``{"head": [...], "middle": [...], "tail": [...]}``.

    Returns:
        ``{segment name: mean AP}`` in the order of ``segments``.

    Raises:
        ValueError: a class id out of range, or a segment none of whose classes has positives.
    """
    ap = np.asarray(per_class_ap, dtype=np.float64)
    if ap.ndim != 1:
        raise ValueError(f"per_class_ap: expected shape (C,), got {ap.shape}")
    out = {}
    for name, ids in segments.items():
        idx = np.asarray(list(ids), dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= ap.size):
            bad = idx[(idx < 0) | (idx >= ap.size)][0]
            raise ValueError(f"segment {quote(name)}: class id {bad} out of range for {ap.size} classes")
        values = ap[idx]
        values = values[~np.isnan(values)]
        if values.size == 0:
            raise ValueError(f"segment {quote(name)}: none of its {idx.size} classes has a positive; its mAP is undefined")
        out[name] = float(values.mean())
    return out


def reference_batch_micro_ap(scores: np.ndarray, targets: np.ndarray, batch_size: int) -> float:
    """The MSQNet reference's reported "mAP": NOT a standard metric, only for comparing with its numbers.

    The reference calls torchmetrics ``MultilabelAveragePrecision(average='micro')`` on each test batch
    (all ``B x C`` scores pooled into one binary problem) and averages the per-batch values weighted by
    batch size (its ``AverageMeter``). The value depends on the batch size and on the row order.
    Rows are batched in the given order, the last batch possibly smaller.

    Differences from running torchmetrics itself: a batch without any positive label (torchmetrics gives
    NaN, which would poison the average) is skipped with a warning; torchmetrics applies a float32
    sigmoid to logits, which leaves AP unchanged except where saturation creates extra ties.

    Raises:
        ValueError: invalid inputs, ``batch_size < 1``, or no batch with a positive.
    """
    s, t = check_scores_and_targets(scores, targets)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    total, count, skipped = 0.0, 0, 0
    for start in range(0, s.shape[0], batch_size):
        batch_s = s[start : start + batch_size]  # (B, C), B <= batch_size
        batch_t = t[start : start + batch_size]
        if not batch_t.any():
            skipped += 1
            continue
        ap = binary_average_precision(batch_s.ravel(), batch_t.ravel())  # micro: B*C pooled pairs
        total += ap * batch_s.shape[0]
        count += batch_s.shape[0]
    if count == 0:
        raise ValueError(f"reference micro AP is undefined: no batch of {batch_size} rows has a positive label")
    if skipped:
        warnings.warn(f"reference_batch_micro_ap: skipped {skipped} batch(es) without any positive label", stacklevel=2)
    return total / count
