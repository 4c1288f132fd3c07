"""The test-time view: how a model sees a video when it is evaluated or used to predict.

A :class:`TestView` is saved with every model (``test_view`` in a checkpoint's ``config.json``) and
``msqnet evaluate``, ``msqnet predict``, ``model.predict`` and the demo all build their clips from
it, through :func:`read_test_clips` (a whole video or a segment) or, for long videos scored as a
timeline, through the same two steps on a stream of frames (``msqnet.data.timeline``):

1. ``view.frame_indices(n, T)``: the K x T frames the sampling strategy takes at test time;
2. ``view.clips_of(frames, T, S)``: short side resized to ``view.resize_to(S)``, then the centre
   crop (or three crops along the long side), giving ``(V, T, 3, S, S)`` with V = K x N views.

The frame count T and the crop size S are not part of the view: they are the model's
(``ModelConfig.num_frames`` / ``image_size``), declared once and passed in.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Mapping

import torch

from ..config_loader import ConfigError
from .decode import probe, read_frames
from .config import Aggregate, Crops, SamplingConfig, Strategy, TransformConfig
from .sampling import multiview_indices
from .transforms import build_test_transform

__all__ = ["TestView", "read_test_clips"]


@dataclass
class TestView:
    """Test-time frame sampling, resize, crops and multi-view settings of a model.

    Args:
        strategy: which frames: ``tsn`` / ``uniform`` (segment middles) or ``dense`` (a centred
            window of frames ``stride`` apart); see ``msqnet.data.sampling``.
        stride: frame step of ``dense``.
        short_side: frames are resized so their short side is this before cropping; ``None`` =
            ``round(S * 8 / 7)`` for the model's crop size S.
        clips: K temporal clips spread over the video.
        crops: N spatial crops per clip: 1 (centre) or 3 (along the long side).
        aggregate: how the K x N views' probabilities are combined: ``mean`` or ``max``.
    """

    __test__ = False  # not a pytest test class, whatever its name

    strategy: Strategy = "tsn"
    stride: int = 2
    short_side: int | None = None
    clips: int = 1
    crops: Crops = 1
    aggregate: Aggregate = "mean"

    def __post_init__(self) -> None:
        # The sampling config validates the shared fields with the same messages.
        self.sampling_config(1)
        if self.short_side is not None and self.short_side < 1:
            raise ConfigError(f"short_side: expected >= 1 or null, got {self.short_side}")

    @classmethod
    def from_configs(cls, sampling: SamplingConfig, transform: TransformConfig) -> "TestView":
        """The test view of a training config's sampling and transform (short side made explicit)."""
        return cls(strategy=sampling.strategy, stride=sampling.stride, short_side=transform.resize_to,
                   clips=sampling.test_clips, crops=sampling.test_crops, aggregate=sampling.aggregate)

    def changed(self, changes: Mapping[str, Any] | None) -> TestView:
        """A copy with the given fields changed (``None`` values are left out: unset command-line flags)."""
        changes = {k: v for k, v in (changes or {}).items() if v is not None}
        return replace(self, **changes) if changes else self

    @property
    def num_views(self) -> int:
        """V = K clips x N crops."""
        return self.clips * self.crops

    def resize_to(self, size: int) -> int:
        """The short side frames are resized to before cropping ``size x size``."""
        return self.transform_config(size).resize_to

    def sampling_config(self, num_frames: int) -> SamplingConfig:
        """This view as the sampling config of a T-frame model (for ``ClipDataset``)."""
        return SamplingConfig(strategy=self.strategy, num_frames=num_frames, stride=self.stride,
                              test_clips=self.clips, test_crops=self.crops, aggregate=self.aggregate)

    def transform_config(self, size: int) -> TransformConfig:
        """This view's resize and crop as a transform config of an S-pixel model (errors if S > short side)."""
        try:
            return TransformConfig(size=size, short_side=self.short_side)
        except ConfigError as e:
            raise ConfigError(f"test_view: {e}") from None

    def frame_indices(self, num_frames: int, T: int) -> list[int]:
        """The K x T frame indices (clip-major) this view takes from ``num_frames`` frames."""
        clips = multiview_indices(num_frames, T, self.clips, strategy=self.strategy, stride=self.stride)
        return [i for clip in clips for i in clip]

    def clips_of(self, frames: torch.Tensor, T: int, size: int) -> torch.Tensor:
        """Resize and crop the ``(K*T, 3, H, W)`` frames of ``frame_indices`` into ``(V, T, 3, S, S)`` views.

        View ``k * N + n`` is temporal clip k, crop n.
        """
        transform = build_test_transform(self.transform_config(size), num_crops=self.crops)
        views = []
        for k in range(self.clips):
            out = transform(frames[k * T : (k + 1) * T])  # (T, 3, S, S), or (3, T, 3, S, S) with three crops
            views.extend(out.unbind(0) if self.crops == 3 else [out])
        return torch.stack(views)  # (V, T, 3, S, S)

    def describe(self, T: int, size: int) -> str:
        """One line for logs: the whole view of a T-frame, S-pixel model."""
        views = f"{self.clips} clip(s) x {self.crops} crop(s), {self.aggregate}"
        stride = f" stride {self.stride}" if self.strategy == "dense" else ""
        return f"{T} frames {self.strategy}{stride}, short side {self.resize_to(size)}, {size} px crop, {views}"


def read_test_clips(
    source: str | os.PathLike,
    view: TestView,
    *,
    num_frames: int,
    size: int,
    first: int = 0,
    last: int | None = None,
    fps: float | None = None,
) -> torch.Tensor:
    """Decode the test views of frames ``[first, last)`` of a video or frame folder: uint8 ``(V, T, 3, S, S)``.

    ``last=None`` means the end of the video; ``fps`` only matters for frame folders. One decode
    serves all K clips; frames are decoded straight to the view's short side.
    """
    if last is None:
        last = probe(source, fps=fps).num_frames
    idx = [first + i for i in view.frame_indices(last - first, num_frames)]
    frames = read_frames(source, idx, size=view.resize_to(size), fps=fps)  # (K*T, 3, h, w)
    return view.clips_of(frames, num_frames, size)
