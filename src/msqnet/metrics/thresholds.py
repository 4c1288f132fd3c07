"""Per-class decision thresholds chosen on validation predictions: the F1-optimal cut of each class.

A label is *detected* when its score is above its threshold (``score > t``, strict, as
:func:`~msqnet.metrics.classification.binarize`). :func:`f1_optimal_thresholds` picks, for every
class with at least one positive clip, the cut that maximises that class's F1 on the given clips,
placed halfway between the lowest score kept and the highest score left out (so a score seen in
validation never sits on the edge). Classes without a positive clip get no threshold (NaN): nothing
tells where their cut lies.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_scores_and_targets

__all__ = ["ClassThreshold", "f1_optimal_thresholds", "DecisionThresholds", "choose_decision_thresholds"]


@dataclass(frozen=True)
class ClassThreshold:
    """One class's chosen cut: ``threshold`` and the ``f1``, ``precision``, ``recall`` it gives on the clips."""

    threshold: float
    f1: float
    precision: float
    recall: float


def _best_cut(scores: np.ndarray, positive: np.ndarray) -> ClassThreshold:
    """The F1-optimal ``score > t`` cut of one class (``positive`` holds at least one True)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], positive[order]
    # Only the last of a run of tied scores is a possible cut: a threshold keeps all ties or none.
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(y)[last_of_tie]
    kept = (np.arange(len(s)) + 1)[last_of_tie]
    f1 = 2 * tp / (kept + y.sum())  # 2TP / (2TP + FP + FN) = 2TP / (kept + positives)
    best = int(np.argmax(f1))
    cut_index = np.flatnonzero(last_of_tie)[best]
    lowest_kept = s[cut_index]
    below = s[cut_index + 1] if cut_index + 1 < len(s) else None
    threshold = (lowest_kept + below) / 2 if below is not None else np.nextafter(lowest_kept, -np.inf)
    return ClassThreshold(float(threshold), float(f1[best]), float(tp[best] / kept[best]), float(tp[best] / y.sum()))


def f1_optimal_thresholds(scores: np.ndarray, targets: np.ndarray) -> list[ClassThreshold | None]:
    """Per class of ``scores`` (N, C) against multi-hot ``targets`` (N, C): the F1-optimal cut, or ``None``
    for a class without a positive clip."""
    scores, targets = check_scores_and_targets(scores, targets)
    out: list[ClassThreshold | None] = []
    for c in range(scores.shape[1]):
        positive = targets[:, c]
        out.append(_best_cut(scores[:, c], positive) if positive.any() else None)
    return out


@dataclass
class DecisionThresholds:
    """The per-class thresholds a model decides with, and the validation predictions they were chosen on.

    Args:
        thresholds: class name -> threshold (``score > t``: detected); classes without a positive
            validation clip are absent (uncalibrated).
        split: the split whose predictions chose them.
        num_clips: how many clips that split scored.
        f1: class name -> the F1 its threshold gives on that split.
        rule: how they were chosen.
    """

    thresholds: dict[str, float]
    split: str
    num_clips: int
    f1: dict[str, float]
    rule: str = "f1-optimal per class"


def choose_decision_thresholds(scores: np.ndarray, targets: np.ndarray, class_names: list[str],
                               split: str) -> DecisionThresholds | None:
    """The F1-optimal :class:`DecisionThresholds` of ``class_names`` from a split's scores and targets (N, C);
    ``None`` when the split scored no clip."""
    if np.shape(scores)[0] == 0:
        return None
    cuts = f1_optimal_thresholds(scores, targets)
    if len(cuts) != len(class_names):
        raise ValueError(f"{len(class_names)} class names for scores of {len(cuts)} classes")
    chosen = {n: c for n, c in zip(class_names, cuts) if c is not None}
    return DecisionThresholds({n: c.threshold for n, c in chosen.items()}, split, int(np.shape(scores)[0]),
                              {n: c.f1 for n, c in chosen.items()})
