"""Typed data configuration: the dataset (format, files, options), how clips are sampled and transformed.

``DataConfig`` is the ``data:`` section of a training config (and ``msqnet data check``'s input);
``SamplingConfig`` and ``TransformConfig`` its ``sampling:`` and ``transform:`` sections. Each
``Literal`` type below is the one list of a setting's allowed values (the command line offers the
same ones).
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config_loader import ConfigError, check_choices
from ..utils import quote
from .options import parse_options

__all__ = [
    "DataFormat",
    "DATA_FORMATS",
    "OnError",
    "Strategy",
    "Crops",
    "Aggregate",
    "TrainCrop",
    "DataConfig",
    "SamplingConfig",
    "TransformConfig",
]

DataFormat = Literal["generic", "animal_kingdom", "charades", "thumos14", "multithumos", "hmdb51", "hockey"]
DATA_FORMATS: tuple[str, ...] = typing.get_args(DataFormat)
# The formats whose benchmark has numbered splits (``DataConfig.fold``); the others have none to pick.
FOLD_FORMATS: tuple[str, ...] = ("hmdb51", "hockey")
# What an unreadable annotation line or clip does: stop with an error naming it, or skip and count it.
OnError = Literal["raise", "skip"]
# Which frames a clip uses (``msqnet.data.sampling``).
Strategy = Literal["tsn", "uniform", "dense"]
# Spatial crops per clip at test time: the centre one, or three along the long side.
Crops = Literal[1, 3]
# How the scores of a video's test views are combined.
Aggregate = Literal["mean", "max"]
# The training crop (``msqnet.data.transforms``).
TrainCrop = Literal["multiscale", "random_resized", "center"]


@dataclass
class DataConfig:
    """Where one dataset lives and how to read its annotations.

    Args:
        format: annotation format; one of ``DATA_FORMATS``.
        root: folder holding the videos or frame folders; every clip's path must stay inside it.
            ``generic`` only: empty means the annotation file's folder.
        annotations: an annotation file, or the folder holding the benchmark's annotation files as
            the benchmark distributes them.
        classes: class list file (``generic``; an optional override of the benchmark's list elsewhere).
        fold: numbered split (HMDB51 split 1-3; Hockey held-out test part). ``None`` is the
            benchmark's default (HMDB51 split 1, Hockey part 6).
        on_error: ``raise`` at the first bad annotation line, or ``skip`` it, log it and keep count
            (``DatasetSplit.problems``).
        options: the format's options (``msqnet.data.options``: e.g. ``source: frames``), checked
            against the format's typed options when the config loads (unknown keys are rejected).
    """

    format: DataFormat
    root: str = ""
    annotations: str = ""
    classes: str | None = None
    fold: int | None = None
    on_error: OnError = "raise"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.annotations:
            raise ConfigError("annotations: required (an annotation file or the folder holding them)")
        if not self.root and self.format != "generic":
            raise ConfigError(f"root: required for format {quote(self.format)} (the folder holding the videos)")
        if self.fold is not None and self.format not in FOLD_FORMATS:  # a setting nothing reads is a mistake
            raise ConfigError(f"fold: format {quote(self.format)} has no numbered splits (only {', '.join(FOLD_FORMATS)} "
                              f"do); remove it and pick the split by name")
        self.format_options()

    def format_options(self) -> Any:
        """``options`` as the typed options of the format (``msqnet.data.options``)."""
        return parse_options(self.format, self.options)


@dataclass
class SamplingConfig:
    """How clips are sampled in training and test.

    Args:
        strategy: ``tsn`` | ``uniform`` | ``dense`` (see the module docstring).
        num_frames: T, frames per clip.
        stride: frame step of the ``dense`` strategy (ignored by the others).
        test_clips: K temporal clips per video at test time.
        test_crops: N spatial crops per clip at test time: 1 (centre) or 3 (left/centre/right or
            top/centre/bottom along the long side).
        aggregate: how the K x N view scores are combined: ``mean`` or ``max``.
    """

    strategy: Strategy = "tsn"
    num_frames: int = 16
    stride: int = 2
    test_clips: int = 1
    test_crops: Crops = 1
    aggregate: Aggregate = "mean"

    def __post_init__(self) -> None:
        check_choices(self)
        if self.num_frames < 1:
            raise ConfigError(f"num_frames: expected >= 1, got {self.num_frames}")
        if self.stride < 1:
            raise ConfigError(f"stride: expected >= 1, got {self.stride}")
        if self.test_clips < 1:
            raise ConfigError(f"test_clips: expected >= 1, got {self.test_clips}")

    @property
    def num_views(self) -> int:
        """Views per video at test time (K clips x N crops)."""
        return self.test_clips * self.test_crops


@dataclass
class TransformConfig:
    """Spatial and colour augmentation of clips.

    Args:
        size: side S of the square output frames.
        short_side: frames are first resized so their short side is this (test: then centre crop
            S). ``None`` means ``round(size * 8 / 7)`` (256 for 224).
        train_crop: ``multiscale`` (TSN: crop side = short side x one of ``scales``, width and height
            at most ``max_distort`` scale steps apart, at a corner or the centre), ``random_resized``
            (Inception-style crop of ``area`` fraction and ``ratio`` aspect) or ``center``.
        scales: multi-scale crop sides as fractions of the short side.
        max_distort: largest index difference between the width and height scales.
        area: fraction of the frame area a random resized crop covers, (min, max).
        ratio: aspect ratio range (w / h) of a random resized crop.
        hflip: flip clips horizontally with probability 0.5 in training. Turn off for label sets
            whose meaning depends on left/right direction.
        color_jitter: (brightness, contrast, saturation, hue) strengths; factors are drawn from
            ``[1 - s, 1 + s]`` (hue: a shift in ``[-s, s]`` of a full turn). Zeros disable.
        color_jitter_prob: probability that a clip gets colour jitter.
        grayscale_prob: probability that a clip is turned to grayscale (kept as 3 channels).
    """

    size: int = 224
    short_side: int | None = None
    train_crop: TrainCrop = "multiscale"
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
    max_distort: int = 1
    area: tuple[float, float] = (0.25, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True
    color_jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
    color_jitter_prob: float = 0.8
    grayscale_prob: float = 0.2

    def __post_init__(self) -> None:
        check_choices(self)
        if self.size < 1:
            raise ConfigError(f"size: expected >= 1, got {self.size}")
        if self.short_side is not None and self.short_side < self.size:
            raise ConfigError(f"short_side: must be >= size ({self.size}), got {self.short_side}")
        if not self.scales or any(not 0 < s <= 1 for s in self.scales):
            raise ConfigError(f"scales: expected fractions in (0, 1], got {list(self.scales)}")
        if not 0 < self.area[0] <= self.area[1] <= 1:
            raise ConfigError(f"area: expected 0 < min <= max <= 1, got {list(self.area)}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ConfigError(f"ratio: expected 0 < min <= max, got {list(self.ratio)}")
        if any(s < 0 for s in self.color_jitter) or self.color_jitter[3] > 0.5:
            raise ConfigError(f"color_jitter: expected non-negative strengths, hue <= 0.5, got {list(self.color_jitter)}")
        for name in ("color_jitter_prob", "grayscale_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name}: expected a probability in [0, 1], got {getattr(self, name)}")

    @property
    def resize_to(self) -> int:
        """The short side frames are resized to before cropping."""
        return self.short_side if self.short_side is not None else round(self.size * 8 / 7)
