"""Typed dataset configuration: which benchmark format, where its videos and annotation files live."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import ConfigError

__all__ = ["DataConfig", "DATA_FORMATS"]

DATA_FORMATS = ("generic", "animal_kingdom", "charades", "thumos14", "multithumos", "hmdb51", "hockey")


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
        options: adapter-specific settings, validated by the adapter (unknown keys are rejected).
    """

    format: Literal["generic", "animal_kingdom", "charades", "thumos14", "multithumos", "hmdb51", "hockey"]
    root: str = ""
    annotations: str = ""
    classes: str | None = None
    fold: int | None = None
    on_error: Literal["raise", "skip"] = "raise"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format not in DATA_FORMATS:
            raise ConfigError(f"format: expected one of {list(DATA_FORMATS)}, got {self.format!r}")
        if not self.annotations:
            raise ConfigError("annotations: required (an annotation file or the folder holding them)")
        if not self.root and self.format != "generic":
            raise ConfigError(f"root: required for format {self.format!r} (the folder holding the videos)")
        if self.on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error: expected 'raise' or 'skip', got {self.on_error!r}")
