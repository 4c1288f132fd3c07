"""How long a dataset's clips are: the duration a model trained on them has learned to answer about.

A checkpoint records it (``clip_seconds``) so that prediction can score a much longer video in
windows of that length instead of one clip stretched over the whole file.
"""
from __future__ import annotations

import logging
import statistics
from typing import Sequence

from .decode import DecodeError, probe
from .records import ClipRecord

__all__ = ["clip_seconds", "typical_clip_seconds"]

log = logging.getLogger(__name__)


def clip_seconds(record: ClipRecord) -> float:
    """The seconds one clip spans: its segment, else its whole video (``probe``: frames / fps)."""
    if record.start is not None and record.end is not None:
        return record.end - record.start
    duration = probe(record.source, fps=record.fps).duration
    return (record.end if record.end is not None else duration) - (record.start or 0.0)


def typical_clip_seconds(records: Sequence[ClipRecord], *, max_probes: int = 32) -> float | None:
    """The median duration of ``records`` (at most ``max_probes`` of them, evenly spread), or ``None``
    when none can be read; unreadable ones are left out."""
    if not records:
        return None
    step = max(1, len(records) // max_probes)
    seconds = []
    for record in records[::step][:max_probes]:
        try:
            value = clip_seconds(record)
        except (DecodeError, FileNotFoundError, ValueError, OSError) as e:
            log.debug("clip %s: no duration (%s)", record.uid, e)
            continue
        if value > 0:
            seconds.append(value)
    return float(statistics.median(seconds)) if seconds else None
