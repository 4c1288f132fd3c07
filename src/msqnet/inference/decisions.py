"""Which labels a prediction detects: the model's per-class thresholds, or one the user gives.

Thresholds come from the checkpoint (``model.decision_thresholds``: F1-optimal per class on the
validation split when training ended, ``msqnet.metrics.thresholds``) or from ``threshold=`` (the
``--threshold`` option), which overrides them for every label. A label without a threshold (a class
name the model was not trained on, a class without a positive validation clip) is never detected,
and a model without thresholds detects nothing: its scores are *uncalibrated*, and outputs say so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["LabelDecisions", "label_decisions", "UNCALIBRATED"]

UNCALIBRATED = "uncalibrated"


@dataclass(frozen=True)
class LabelDecisions:
    """Per-label thresholds ``(C,)`` (NaN: none, never detected) and where they come from (``source``)."""

    thresholds: np.ndarray
    source: str

    @property
    def calibrated(self) -> bool:
        """Whether any label has a threshold (else nothing is detected and the scores are uncalibrated)."""
        return bool(np.isfinite(self.thresholds).any())

    def detected(self, probabilities: np.ndarray) -> np.ndarray:
        """``(C,)`` bool: the labels whose score is above their threshold (``score > t``)."""
        with np.errstate(invalid="ignore"):
            return np.isfinite(self.thresholds) & (probabilities > np.nan_to_num(self.thresholds, nan=np.inf))


def label_decisions(model, labels: Sequence[str], threshold: float | None = None) -> LabelDecisions:
    """The thresholds ``labels`` are decided with: ``threshold`` for all when given, else the model's
    recorded ones (by class name), else none."""
    if threshold is not None:
        if not math.isfinite(threshold) or not 0 <= threshold <= 1:
            raise ValueError(f"threshold: expected a probability in [0, 1], got {threshold}")
        return LabelDecisions(np.full(len(labels), float(threshold)), f"threshold {threshold:g} for every label")
    recorded = getattr(model, "decision_thresholds", None)
    if recorded is None:
        return LabelDecisions(np.full(len(labels), np.nan), UNCALIBRATED)
    values = np.array([recorded.thresholds.get(name, np.nan) for name in labels], dtype=np.float64)
    source = f"{recorded.rule} on split '{recorded.split}' ({recorded.num_clips} clips)"
    return LabelDecisions(values, source if np.isfinite(values).any() else UNCALIBRATED)
