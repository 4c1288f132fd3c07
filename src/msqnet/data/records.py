"""The one record schema every dataset adapter yields."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

__all__ = ["ClipRecord"]


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
