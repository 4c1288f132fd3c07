"""The ETS NHL broadcast "hockey" dataset of the MSQNet paper: 12 multi-label events per frame.

Layout: frame folders ``<root>/period<P>-<K>-gray/`` and, in ``annotations`` (often the same
folder), one label file per folder ``period<P>-<K>-gray-label.txt`` holding one line per frame of 12
comma-separated 0/1 flags in the order of ``HOCKEY_CLASSES``. ``K`` is the part of the game; part
``fold`` (default 6, the reference's) is the test split and every other part is train.

Each video is cut into windows of ``window`` frames (30) every ``train_stride`` (10) or
``test_stride`` (45) frames; a window's labels are the union of its frames' flags. Records carry
the window as ``start`` / ``end`` seconds at ``fps`` and as ``frame_start`` / ``frame_end`` in
``meta``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ...config_loader import ConfigError
from ...utils import quote
from ..decode import IMAGE_EXTENSIONS
from ..records import ClipRecord
from .base import DatasetSplit, ProblemLog, read_class_list, read_lines, require_split, resolve_source

__all__ = ["HOCKEY_CLASSES", "load", "splits"]

SPLITS = ("train", "test")
DEFAULT_TEST_PART = 6
HOCKEY_CLASSES = (
    "Celebration", "Checking", "Corner Action", "End of Period", "Face-Off", "Fight",
    "Goal", "Line Change", "Penalty", "Shot", "Save", "Play",
)
_LABEL_FILE = re.compile(r"^(?P<video>period(?P<period>\d+)-(?P<part>\d+)-gray)-label\.txt$")


def splits(cfg) -> list[str]:
    """Hockey's splits (test = the held-out part ``cfg.fold``)."""
    return list(SPLITS)


def _frame_count(folder: Path) -> int | None:
    """Number of image files in a frame folder, or None where the folder is absent."""
    if not folder.is_dir():
        return None
    return sum(1 for e in os.scandir(folder) if os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)


def _read_flags(file: Path, num_classes: int, log: ProblemLog) -> list[tuple[int, ...] | None]:
    """Per-frame active class ids; None for a frame whose line is malformed (reported)."""
    frames: list[tuple[int, ...] | None] = []
    for line, raw in enumerate(read_lines(file, "label file"), 1):
        values = [v.strip() for v in raw.split(",")]
        if len(values) != num_classes or any(v not in ("0", "1") for v in values):
            log.report(file, line, f"bad frame labels {quote(raw.strip()[:60])}", f"{num_classes} comma-separated 0/1 flags")
            frames.append(None)
            continue
        frames.append(tuple(i for i, v in enumerate(values) if v == "1"))
    return frames


def load(cfg, split: str) -> DatasetSplit:
    """Load the train or test windows of the Hockey dataset."""
    require_split("hockey", split, SPLITS)
    opts = cfg.format_options()
    test_part = DEFAULT_TEST_PART if cfg.fold is None else cfg.fold
    folder = Path(cfg.annotations)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: Hockey annotation folder (holding period*-gray-label.txt) not found")
    label_files = []  # (video, part, label file)
    for p in sorted(folder.iterdir()):
        m = _LABEL_FILE.match(p.name)
        if m:
            label_files.append((m.group("video"), int(m.group("part")), p))
    if not label_files:
        raise FileNotFoundError(f"{folder}: no period<P>-<K>-gray-label.txt files")
    parts = sorted({part for _, part, _ in label_files})
    if test_part not in parts:
        raise ConfigError(f"fold: Hockey test part {test_part} has no videos in {folder}; parts found: {parts}")
    class_names = read_class_list(cfg.classes)[0] if cfg.classes else list(HOCKEY_CLASSES)
    stride = opts.train_stride if split == "train" else opts.test_stride
    log = ProblemLog(cfg.on_error)
    records: list[ClipRecord] = []
    for video, part, file in label_files:
        if (part == test_part) != (split == "test"):
            continue
        source = resolve_source(cfg.root, video, log, file, None)
        if source is None:
            continue
        flags = _read_flags(file, len(class_names), log)
        n = len(flags)
        on_disk = _frame_count(Path(source))
        if on_disk is not None and on_disk != n:
            log.report(file, None, f"{n} label lines but {on_disk} frames in {source}", "one label line per frame")
            n = min(n, on_disk)
        for f0 in range(0, n - opts.window + 1, stride):
            window = flags[f0 : f0 + opts.window]
            if any(f is None for f in window):
                continue  # a malformed line inside: already reported
            labels = tuple(sorted({c for f in window for c in f}))
            meta = {"fps": f"{opts.fps:g}", "frame_start": str(f0), "frame_end": str(f0 + opts.window), "part": str(part)}
            records.append(
                ClipRecord(f"{video}@{f0}", source, labels, f0 / opts.fps, (f0 + opts.window) / opts.fps, meta)
            )
    log.summarize(f"hockey {split} (test part {test_part})")
    return DatasetSplit(split, records, class_names, True, None, None, log.problems)
