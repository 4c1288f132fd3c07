"""Sliding windows over a long video, decoded once front to back and built as the frames arrive.

``timeline_windows`` lays windows of ``window`` seconds every ``stride`` seconds on the video's
**real timestamps** (``VideoInfo.timestamps`` for variable-frame-rate files), so a window holds the
frames shown during its time span, not ``round(t * average fps)``-indexed ones.

``WindowClips`` streams the windows' test clips: it plans every window's frames with the
model's test view (``TestView.frame_indices``), decodes the union of those frames in one pass
(``iter_frames``: sequential, or one seek per window where windows are sparse) and builds each
window (``TestView.clips_of``) as soon as its last frame is decoded, then drops the frames no later
window needs. Memory is bounded by the frames of the windows that overlap the decoding position,
whatever the video's length; time is one decode of the video plus the windows' transforms.
"""
from __future__ import annotations

import bisect
import math
import os
from dataclasses import dataclass
from typing import Iterator

import torch

from .decode import VideoInfo, iter_frames, probe
from .views import TestView

__all__ = ["Window", "timeline_windows", "WindowClips"]

# Slack for float round-off between a window edge and a frame timestamp that lies exactly on it.
_EPS = 1e-6


@dataclass(frozen=True)
class Window:
    """One window of a timeline: frames ``[start_frame, end_frame)``, shown during ``[start_s, end_s)``."""

    start_frame: int
    end_frame: int  # exclusive
    start_s: float
    end_s: float


def _frame_times(info: VideoInfo) -> list[float] | None:
    """Presentation time of every frame for variable-rate videos; ``None`` where frame i is at i / fps."""
    return list(info.timestamps) if info.timestamps is not None else None


def _frames_shown(info: VideoInfo, times: list[float] | None, start: float, end: float) -> tuple[int, int]:
    """Frames ``[first, last)`` on screen during ``[start, end)``: from the frame shown at ``start`` (the
    last one that began at or before it) up to the last one that begins before ``end``."""
    n = info.num_frames
    if times is not None:
        first = bisect.bisect_right(times, start + _EPS) - 1
        last = bisect.bisect_left(times, end - _EPS)
    else:
        first = math.floor((start + _EPS) * info.fps)
        last = math.ceil((end - _EPS) * info.fps)
    first = min(max(first, 0), n - 1)
    return first, min(max(last, first + 1), n)


def timeline_windows(info: VideoInfo, window: float, stride: float) -> list[Window]:
    """Windows of ``window`` seconds starting every ``stride`` seconds from 0, over the whole video.

    The first window that would reach past the end is moved back to end exactly at the end of the
    video, and sliding stops: every moment is covered and every window has the full length (a
    video shorter than one window gives one window over all of it). Windows that would hold
    exactly the frames of the one before (a still frame longer than the stride in a variable-rate
    file) are dropped.
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be positive seconds, got {window} and {stride}")
    duration = info.duration
    # At most one window start per frame: a stride shorter than a frame only repeats windows, and a
    # tiny one (1e-9 s) would lay billions of them, so it is refused before any is laid.
    starts = math.floor(max(0.0, duration - window) / stride + _EPS) + 1
    if starts > info.num_frames:
        raise ValueError(
            f"a stride of {stride:g} s lays {starts:,} windows on a video of {info.num_frames} frames; expected a "
            f"stride of at least one frame ({1 / info.fps:.3g} s at {info.fps:.3g} fps; --stride, or --window "
            "when no stride is given)"
        )
    times = _frame_times(info)
    windows: list[Window] = []
    j = 0
    while True:
        start = j * stride
        end = start + window
        if end >= duration - _EPS:
            start, end = max(0.0, duration - window), duration
        first, last = _frames_shown(info, times, start, end)
        if not windows or (windows[-1].start_frame, windows[-1].end_frame) != (first, last):
            windows.append(Window(first, last, start, end))
        if end >= duration:
            return windows
        j += 1


class WindowClips:
    """The test clips of every timeline window of one video, streamed from one decode (iterate once).

    Iterating yields ``(window, uint8 (V, T, 3, S, S) test views)`` in time order; the clips equal
    ``read_test_clips(source, view, first=w.start_frame, last=w.end_frame, ...)`` of each window.
    ``peak_frames_held`` tells afterwards the most decoded frames held at once (``fps`` only
    matters for frame folders).
    """

    def __init__(self, source: str | os.PathLike, view: TestView, *, num_frames: int, size: int, window: float,
                 stride: float, fps: float | None = None):
        self.source = source
        self.view = view
        self.num_frames = num_frames
        self.size = size
        self.fps = fps
        self.windows = timeline_windows(probe(source, fps=fps), window, stride)
        self.peak_frames_held = 0

    def __len__(self) -> int:
        return len(self.windows)

    def __iter__(self) -> Iterator[tuple[Window, torch.Tensor]]:
        view, T = self.view, self.num_frames
        plans = [[w.start_frame + i for i in view.frame_indices(w.end_frame - w.start_frame, T)] for w in self.windows]
        last_use: dict[int, int] = {}  # frame -> the last window that needs it
        for j, plan in enumerate(plans):
            for f in plan:
                last_use[f] = j
        held: dict[int, torch.Tensor] = {}  # decoded frames a pending window still needs, (3, h, w) each
        next_window = 0
        for i, frame in iter_frames(self.source, sorted(last_use), size=view.resize_to(self.size), fps=self.fps):
            held[i] = frame
            self.peak_frames_held = max(self.peak_frames_held, len(held))
            while next_window < len(plans) and max(plans[next_window]) <= i:
                plan = plans[next_window]
                frames = torch.stack([held[f] for f in plan])  # (K*T, 3, h, w)
                yield self.windows[next_window], view.clips_of(frames, T, self.size)
                for f in set(plan):
                    if last_use[f] == next_window:
                        del held[f]
                next_window += 1
