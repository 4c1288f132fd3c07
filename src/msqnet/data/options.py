"""The typed options of each dataset format (``DataConfig.options``), validated when the config loads."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

from ..config_loader import ConfigError, from_dict
from ..utils import quote

__all__ = [
    "MediaSource",
    "GenericOptions",
    "AnimalKingdomOptions",
    "CharadesOptions",
    "Thumos14Options",
    "MultiThumosOptions",
    "Hmdb51Options",
    "HockeyOptions",
    "FORMAT_OPTIONS",
    "parse_options",
]

# Where a dataset's clips are: video files, or folders of frame images.
MediaSource = Literal["video", "frames"]


@dataclass
class GenericOptions:
    """Options of the generic format.

    Args:
        multi_label: ``true``: clips carry any number of labels (sigmoid / BCE); ``false``: exactly
            one label per clip, single-label (softmax / cross-entropy, top-1); ``null`` (the default):
            single-label when every clip of the split has exactly one label, else multi-label (the
            trainer decides from its training split and reads the evaluation splits the same way).
    """

    multi_label: bool | None = None


@dataclass
class AnimalKingdomOptions:
    """Options of the Animal Kingdom format.

    Args:
        source: ``frames`` (``<root>/<video_id>/`` image folders) or ``video`` (``<root>/<video_id><video_ext>``).
        video_ext: file extension of the videos with ``source: video``.
    """

    source: MediaSource = "frames"
    video_ext: str = ".mp4"


@dataclass
class CharadesOptions:
    """Options of the Charades format.

    Args:
        segments: one record per action instance (trimmed, single label, with start / end)
            instead of one per video.
        keep_unlabeled_train: keep train videos that have no action (all-negative targets).
        source: ``video`` (``<root>/<id><video_ext>``) or ``frames`` (``<root>/<id>/``).
        video_ext: extension of the video files.
        fps: frame rate of the frame folders (Charades' RGB frames are 24 fps); stored in ``meta``.
    """

    segments: bool = False
    keep_unlabeled_train: bool = False
    source: MediaSource = "video"
    video_ext: str = ".mp4"
    fps: float = 24.0


@dataclass
class Thumos14Options:
    """Options of the THUMOS14 format.

    Args:
        source: ``video`` (``<root>/<video><video_ext>``) or ``frames`` (``<root>/<video>/``).
        video_ext: extension of the video files.
    """

    source: MediaSource = "video"
    video_ext: str = ".mp4"


@dataclass
class MultiThumosOptions:
    """Options of the MultiTHUMOS format.

    Args:
        window: window length in seconds; 0 = one record per whole video.
        stride: seconds between window starts (default: ``window``, no overlap).
        min_overlap: seconds an instance must overlap a window to label it (shorter instances
            count when they lie wholly inside).
        source: ``video`` or ``frames``, as for ``thumos14``.
        video_ext: extension of the video files.
    """

    window: float = 8.0
    stride: float | None = None
    min_overlap: float = 0.5
    source: MediaSource = "video"
    video_ext: str = ".mp4"


@dataclass
class Hmdb51Options:
    """Options of the HMDB51 format.

    Args:
        source: ``video`` (``<root>/<class>/<name>.avi``) or ``frames`` (``<root>/<class>/<stem>/``).
    """

    source: MediaSource = "video"


@dataclass
class HockeyOptions:
    """Options of the Hockey format.

    Args:
        window: frames per clip.
        train_stride: frames between train window starts.
        test_stride: frames between test window starts.
        fps: frame rate of the frame folders (turns frame windows into seconds).
    """

    window: int = 30
    train_stride: int = 10
    test_stride: int = 45
    fps: float = 30.0

    def __post_init__(self) -> None:
        if self.window <= 0 or self.train_stride <= 0 or self.test_stride <= 0 or self.fps <= 0:
            raise ConfigError("window, train_stride, test_stride and fps must be positive")


FORMAT_OPTIONS: dict[str, type] = {
    "generic": GenericOptions,
    "animal_kingdom": AnimalKingdomOptions,
    "charades": CharadesOptions,
    "thumos14": Thumos14Options,
    "multithumos": MultiThumosOptions,
    "hmdb51": Hmdb51Options,
    "hockey": HockeyOptions,
}


def parse_options(fmt: str, options: Mapping[str, Any]) -> Any:
    """``options`` as the typed options of format ``fmt`` (unknown keys and wrong types rejected)."""
    try:
        return from_dict(FORMAT_OPTIONS[fmt], options, where="options")
    except ConfigError as e:
        raise ConfigError(f"format {quote(fmt)}: {e}") from None
