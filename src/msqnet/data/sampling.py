"""Frame sampling: which T frame indices of a clip a model sees.

Every function returns indices into ``[0, num_frames)`` of the clip (the dataset adds the segment's
first frame). Strategies:

* ``tsn``: T equal segments; training takes a random frame of each segment, test the middle one
  (the reference's sampler, minus its never-jittered training).
* ``uniform``: T equally spaced frames; training shifts the whole grid by one random phase (spacing
  stays equal, unlike TSN's independent per-segment jitter), test takes the segment middles
  (identical to TSN's test indices).
* ``dense``: T contiguous frames ``stride`` apart; training starts anywhere the window fits, test
  starts it in the middle.

**Short clips** (fewer frames than a strategy needs): the frames that exist are repeated in order
to fill T slots, never padded with black and never an error. TSN on a 5-frame clip with T=16 gives
``[0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]``-style runs; a dense window longer than the clip
takes every ``stride``-th frame of the whole clip and repeats each in order.

Sliding windows over long videos (timelines) live in ``msqnet.data.timeline``, on real timestamps.

Multi-view testing takes K temporal clips (``multiview_indices``) times N spatial crops (see
``transforms.three_crop``) and averages or maxes the per-view scores (``aggregate_views``).
"""
from __future__ import annotations

import math
import typing
from typing import Sequence

import numpy as np
import torch

from ..utils import quote
from .config import Aggregate, SamplingConfig, Strategy

__all__ = [
    "tsn_indices",
    "uniform_indices",
    "dense_indices",
    "sample_indices",
    "multiview_indices",
    "aggregate_views",
]

def _check(num_frames: int, T: int) -> None:
    if num_frames < 1:
        raise ValueError(f"cannot sample from a clip with {num_frames} frames")
    if T < 1:
        raise ValueError(f"T (frames per clip) must be >= 1, got {T}")


def _need_rng(rng: np.random.Generator | None, what: str) -> np.random.Generator:
    if rng is None:
        raise ValueError(f"{what} with train=True needs an rng (np.random.Generator) so sampling is reproducible")
    return rng


def _repeat_in_order(available: Sequence[int], T: int) -> list[int]:
    """Stretch ``available`` (fewer than T) to T slots, each entry repeated in order."""
    m = len(available)
    return [int(available[(k * m) // T]) for k in range(T)]


def _grid(num_frames: int, T: int, phase: float) -> list[int]:
    """``floor((k + phase) * num_frames / T)`` for k < T: T equally spaced frames at a sub-step phase."""
    step = num_frames / T
    return [min(num_frames - 1, int(math.floor((k + phase) * step))) for k in range(T)]


def _segments(num_frames: int, T: int) -> list[tuple[int, int]]:
    """T near-equal integer segments ``[start, end)`` covering ``[0, num_frames)`` (needs num_frames >= T)."""
    bounds = [(k * num_frames) // T for k in range(T + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _segment_points(num_frames: int, T: int, fraction: float) -> list[int]:
    """The frame at ``fraction`` in [0, 1) of each of the T segments."""
    return [s + int(fraction * (e - s)) for s, e in _segments(num_frames, T)]


def tsn_indices(num_frames: int, T: int, *, train: bool, rng: np.random.Generator | None = None) -> list[int]:
    """TSN: one frame per equal segment; random within it in training, its middle at test."""
    _check(num_frames, T)
    if num_frames < T:
        return _repeat_in_order(range(num_frames), T)
    if train:
        rng = _need_rng(rng, "tsn_indices")
        return [int(rng.integers(s, e)) for s, e in _segments(num_frames, T)]
    return _segment_points(num_frames, T, 0.5)


def uniform_indices(num_frames: int, T: int, *, train: bool, rng: np.random.Generator | None = None) -> list[int]:
    """T equally spaced frames; one random grid phase in training, the centred grid at test."""
    _check(num_frames, T)
    if num_frames < T:
        return _repeat_in_order(range(num_frames), T)
    if not train:
        return _segment_points(num_frames, T, 0.5)
    return _grid(num_frames, T, float(_need_rng(rng, "uniform_indices").random()))


def dense_indices(
    num_frames: int, T: int, stride: int, *, train: bool, rng: np.random.Generator | None = None
) -> list[int]:
    """T contiguous frames ``stride`` apart; random start in training, centred at test."""
    _check(num_frames, T)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    span = (T - 1) * stride + 1
    if span > num_frames:
        return _repeat_in_order(range(0, num_frames, stride), T)
    if train:
        start = int(_need_rng(rng, "dense_indices").integers(0, num_frames - span + 1))
    else:
        start = (num_frames - span) // 2
    return [start + k * stride for k in range(T)]


def sample_indices(
    cfg: SamplingConfig, num_frames: int, *, train: bool, rng: np.random.Generator | None = None
) -> list[int]:
    """The one clip ``cfg`` asks for (the test-time single view when ``train`` is False)."""
    T = cfg.num_frames
    if cfg.strategy == "tsn":
        return tsn_indices(num_frames, T, train=train, rng=rng)
    if cfg.strategy == "uniform":
        return uniform_indices(num_frames, T, train=train, rng=rng)
    return dense_indices(num_frames, T, cfg.stride, train=train, rng=rng)


def multiview_indices(
    num_frames: int, T: int, num_clips: int, *, strategy: Strategy = "tsn", stride: int = 1
) -> list[list[int]]:
    """K temporal test clips spread evenly over the video; K=1 equals the strategy's test clip.

    For ``tsn``/``uniform`` clip j takes the frame at fraction ``(j + 0.5) / K`` of each of the T segments;
    for ``dense`` the K windows start at evenly spaced positions from the first to the last that fits.
    """
    _check(num_frames, T)
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if strategy == "dense":
        span = (T - 1) * stride + 1
        if span > num_frames or num_clips == 1:
            return [dense_indices(num_frames, T, stride, train=False)] * num_clips
        starts = np.linspace(0, num_frames - span, num_clips).round().astype(int)
        return [[int(s) + k * stride for k in range(T)] for s in starts]
    if strategy not in ("tsn", "uniform"):
        raise ValueError(f"unknown sampling strategy {quote(strategy)}; expected one of {list(typing.get_args(Strategy))}")
    if num_frames < T:
        return [_repeat_in_order(range(num_frames), T)] * num_clips
    return [_segment_points(num_frames, T, (j + 0.5) / num_clips) for j in range(num_clips)]


def aggregate_views(scores: torch.Tensor, how: Aggregate) -> torch.Tensor:
    """Combine per-view scores ``(B, V, C) -> (B, C)``; pass probabilities, not logits, for ``max``."""
    if scores.ndim != 3:
        raise ValueError(f"expected view scores of shape (B, V, C), got {tuple(scores.shape)}")
    if how == "mean":
        return scores.mean(dim=1)
    if how == "max":
        return scores.amax(dim=1)
    raise ValueError(f"aggregate: expected one of {list(typing.get_args(Aggregate))}, got {quote(how)}")
