"""The one record schema every dataset adapter yields."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..utils import quote

__all__ = ["ClipRecord", "parse_fps", "multi_hot"]


def parse_fps(value: Any) -> float | None:
    """A frame rate given as metadata (``meta['fps']``): ``None`` when empty, else a positive finite number.

    Raises ValueError saying what the value was and what was expected.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        fps = float(value)
    except (TypeError, ValueError):
        fps = math.nan
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps {quote(value)}; expected a positive number of frames per second")
    return fps


@dataclass(frozen=True)
class ClipRecord:
    """One labelled clip: a video file or frame folder, its label ids, and an optional segment.

    Args:
        uid: unique id of the clip within its dataset (e.g. ``video_id`` or ``video_id@start-end``).
        source: absolute path of a video file or of a folder of frame images.
        labels: class ids (sorted, unique); empty for a clip with no action.
        start: segment start in seconds, ``None`` for the whole video.
        end: segment end in seconds, ``None`` for the whole video.
        meta: free-form string metadata (actor, species, original video id, annotation line, ...).
    """

    uid: str
    source: str
    labels: tuple[int, ...]
    start: float | None = None
    end: float | None = None
    meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def fps(self) -> float | None:
        """The frame rate its metadata gives a frame folder (``meta['fps']``), or ``None``."""
        try:
            return parse_fps(self.meta.get("fps") if self.meta else None)
        except ValueError as e:
            raise ValueError(f"clip {self.uid}: metadata {e}") from None


def multi_hot(records: Sequence[ClipRecord], num_classes: int) -> np.ndarray:
    """``(N, C)`` int64 multi-hot matrix of the records' labels (single-label records: one-hot)."""
    targets = np.zeros((len(records), num_classes), dtype=np.int64)
    for i, r in enumerate(records):
        targets[i, list(r.labels)] = 1
    return targets
