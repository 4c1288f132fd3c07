"""Whole-video labels of long videos: score windows as long as the training clips, then aggregate.

A model trained on clips of a few seconds answers "what happens in these few seconds". One clip of
frames spread over a much longer video (one frame every 10 s of an 80 s file) is not that question,
so a video more than :data:`LONG_VIDEO_FACTOR` times its model's training-clip duration
(``model.clip_seconds``) is scored in windows of that duration, and its whole-video score per label
is an aggregate over the windows (:func:`aggregate_windows`):

* **multi-label** models (sigmoid): the **maximum** over windows, since an action that happens
  anywhere in the video is in the video;
* **single-label** models (softmax): the **mean** of the windows' softmax probabilities, which still
  sums to 1 over the labels and is the share of the video each label takes (a max would not).

The view is in every prediction (``view: whole | windows``) and can be forced (``view=``).
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from ..utils import quote

__all__ = ["ViewMode", "LONG_VIDEO_FACTOR", "aggregate_windows", "choose_view", "aggregate_name"]

# auto: windows for a long video (see the module docstring), else one clip; whole / windows: forced.
ViewMode = Literal["auto", "whole", "windows"]

# A video is long, and scored in windows, when it lasts more than this many training clips.
LONG_VIDEO_FACTOR = 2.0


def aggregate_name(multi_label: bool) -> str:
    """How windows' scores make the whole-video score: ``max`` (multi-label) or ``mean`` (single-label)."""
    return "max" if multi_label else "mean"


def aggregate_windows(probs: np.ndarray, multi_label: bool) -> np.ndarray:
    """The whole-video scores ``(C,)`` of per-window probabilities ``(N windows, C)``."""
    return probs.max(axis=0) if multi_label else probs.mean(axis=0)


def choose_view(mode: ViewMode, duration: float, clip_seconds: float | None, window: float | None) -> str:
    """``whole`` (one clip over the video) or ``windows`` (the aggregate of windows) for a video of
    ``duration`` seconds.

    ``auto``: windows when the video lasts more than ``LONG_VIDEO_FACTOR`` training clips; with no
    recorded clip duration (older checkpoints), windows exactly when ``window`` is given, as before.
    """
    if mode not in ("auto", "whole", "windows"):
        raise ValueError(f"view: expected auto, whole or windows, got {quote(mode)}")
    if mode != "auto":
        return mode
    if clip_seconds is None:
        return "windows" if window is not None else "whole"
    return "windows" if duration > LONG_VIDEO_FACTOR * clip_seconds else "whole"
