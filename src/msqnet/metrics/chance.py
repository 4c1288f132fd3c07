"""Chance levels: the exact expected value of a metric for random scores, reported beside every figure.

For a class with ``m`` positives among ``n`` clips, ranking the clips at random gives an *expected*
average precision of

    E[AP] = (H_n + (m - 1) / (n - 1) * (n - H_n)) / n,    H_n = 1 + 1/2 + ... + 1/n,

(the positive at rank r has precision (1 + #positives above it) / r; averaging over the uniform rank
and the hypergeometric count above it gives the formula). Chance mAP is its mean over the classes
that have at least one positive, exactly like macro mAP drops classes without positives. It is
exact, not a Monte-Carlo estimate; for large n it approaches the class prevalence. Top-k accuracy
of random scores is ``k / C``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["expected_random_ap", "chance_map", "chance_topk"]


def expected_random_ap(n: int, m: int) -> float:
    """Expected average precision of a uniformly random ranking of ``n`` items with ``m`` positives."""
    if not 0 < m <= n:
        raise ValueError(f"need 0 < positives <= items, got m={m}, n={n}")
    if n == 1:
        return 1.0
    harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
    return (harmonic + (m - 1) / (n - 1) * (n - harmonic)) / n


def chance_map(targets: np.ndarray, columns: Sequence[int] | None = None) -> float | None:
    """Expected macro mAP of random scores on ``(N, C)`` multi-hot ``targets`` (of ``columns``, default
    all), classes without positives dropped; ``None`` when no class has a positive."""
    y = np.asarray(targets) != 0
    cols = range(y.shape[1]) if columns is None else columns
    aps = [expected_random_ap(y.shape[0], int(y[:, c].sum())) for c in cols if y[:, c].sum() > 0]
    return float(np.mean(aps)) if aps else None


def chance_topk(k: int, num_classes: int) -> float:
    """Top-k accuracy of random scores over ``num_classes`` classes."""
    return min(1.0, k / num_classes)
