"""Input validation shared by every metric: shapes, NaN scores, binary targets, empty input."""
from __future__ import annotations

import numpy as np

__all__ = ["check_scores", "check_scores_and_targets"]


def check_scores(scores: np.ndarray, *, name: str = "scores") -> np.ndarray:
    """Return ``scores`` as a float64 ``(N, C)`` array; raise on a wrong rank, empty input or NaN."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (N clips, C classes), got shape {s.shape}")
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"{name}: empty input of shape {s.shape}; need at least one row and one class")
    nan = np.isnan(s)
    if nan.any():
        rows, cols = np.nonzero(nan)
        raise ValueError(
            f"{name} contain NaN in {len(np.unique(rows))} row(s) and {len(np.unique(cols))} class(es) "
            f"({int(nan.sum())} value(s), first at row {rows[0]}, class {cols[0]}); "
            "metrics are undefined for NaN scores"
        )
    return s


def check_scores_and_targets(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a score matrix and its {0,1} target matrix; return ``(float64 (N, C), bool (N, C))``."""
    s = check_scores(scores)
    t = np.asarray(targets)
    if t.shape != s.shape:
        raise ValueError(f"shape mismatch: scores {s.shape} vs targets {t.shape}; both must be (N clips, C classes)")
    if t.dtype != np.bool_:
        bad = (t != 0) & (t != 1)
        if bad.any():
            r, c = (int(i[0]) for i in np.nonzero(bad))
            raise ValueError(f"targets must contain only 0 and 1, found {t[r, c].item()!r} at row {r}, class {c}")
        t = t == 1
    return s, t
