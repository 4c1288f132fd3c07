"""Charades mAP exactly as the official ``Charades_v1_classify.m`` computes it.

The official script (adapted from THUMOS15) differs from scikit-learn's AP in how it handles ties and
which rows it scores:

- every row of the ground-truth CSV is a row of the score matrix, in CSV order;
- a row with no actions is scored ``-inf`` for every class whatever the submission says (the script
  never reads its scores), and a row missing from the submission is ``-inf`` too (the caller fills it);
- per class, rows are sorted by score, descending, with a STABLE sort: tied rows keep their row order,
  so a tie is not one threshold as in sklearn but a sequence of ranks;
- ``AP = sum(precision at the rank of each positive) / number of positives``;
- ``mAP`` is the plain mean of the class APs; ``WAP`` weights each AP by its class's positives.

A class without positives has AP 0/0 = NaN in the official script, which makes its mAP NaN. Here such a
class keeps NaN in ``per_class_ap`` but is EXCLUDED from ``map`` and ``wap`` (``num_classes_used`` says
how many entered). On the official test set all 157 classes have positives, so this never changes a
published number; it makes the metric usable on subsets.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_scores_and_targets

__all__ = ["CharadesMAPResult", "charades_map"]


@dataclass(frozen=True)
class CharadesMAPResult:
    """Official Charades classification metrics.

    Args:
        map: plain mean of ``per_class_ap`` over classes with positives.
        wap: mean of ``per_class_ap`` weighted by each class's number of positives.
        per_class_ap: ``(C,)`` AP per class; NaN for a class without positives.
        num_classes_used: how many classes entered ``map`` and ``wap``.
    """

    map: float
    wap: float
    per_class_ap: np.ndarray
    num_classes_used: int


def charades_map(scores: np.ndarray, targets: np.ndarray) -> CharadesMAPResult:
    """mAP and WAP of ``Charades_v1_classify.m`` from ``(N, C)`` scores and ``(N, C)`` {0,1} targets.

    Rows of ``targets`` without any positive get ``-inf`` scores (see the module docstring). Scores may
    be ``+-inf``; NaN raises.

    Raises:
        ValueError: shape mismatch, empty input, NaN scores, non-binary targets, or no class with a positive.
    """
    s, t = check_scores_and_targets(scores, targets)
    s = s.copy()
    s[~t.any(axis=1)] = -np.inf  # the official script never reads a no-action video's scores
    order = np.argsort(-s, axis=0, kind="stable")  # (N, C): per class, rows by descending score, ties in row order
    hits = np.take_along_axis(t, order, axis=0)  # (N, C) bool, positives in ranked order
    precision = np.cumsum(hits, axis=0) / np.arange(1, s.shape[0] + 1)[:, None]  # (N, C) precision at each rank
    num_pos = t.sum(axis=0)  # (C,)
    used = num_pos > 0
    if not used.any():
        raise ValueError(f"Charades mAP is undefined: none of the {s.shape[1]} classes has a positive")
    ap = np.full(s.shape[1], np.nan)
    ap[used] = np.where(hits, precision, 0.0).sum(axis=0)[used] / num_pos[used]
    wap = float(np.sum(ap[used] * num_pos[used]) / num_pos[used].sum())
    return CharadesMAPResult(map=float(ap[used].mean()), wap=wap, per_class_ap=ap, num_classes_used=int(used.sum()))
