"""THUMOS14 (20 classes) as trimmed single-label segments, and MultiTHUMOS (65 classes) as multi-label windows.

``thumos14`` follows the MSQNet reference's protocol: every ground-truth instance of the 20 classes
is a trimmed clip with one label (20-way classification, top-1 accuracy). Annotation files
(``annotations`` = a folder holding ``annotations_val/`` and ``annotations_test/`` as the official
release ships them, or one of those folders): ``<Class>_{val,test}.txt`` with lines
``video_validation_0000266  72.8 76.4`` (whitespace-separated); ``Ambiguous_*.txt`` marks regions
to ignore and is not a class. Class ids are the class names in alphabetical order. When
``TH14_video_info.json`` (fps / duration / frames per video) sits in the folder or its parent,
unknown videos are reported and instances ending after their video are logged (the official
files have a few; the decoder clamps them).

``multithumos`` reads ``multithumos.json`` (``{video: {subset, duration, actions: [[class_1_based,
start, end], ...]}}``) and cuts each video of the subset into windows of ``window`` seconds every
``stride`` seconds; a window's labels are the classes of the instances overlapping it by at least
``min_overlap`` seconds (or wholly inside it). ``window: 0`` gives one record per video.

``root`` holds ``<video>.mp4`` (``source: video``) or frame folders ``<video>/`` (``source: frames``).
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from ...config_loader import ConfigError
from ...utils import quote, read_text
from ..records import ClipRecord, parse_fps
from .base import (
    DatasetSplit,
    ProblemLog,
    annotation_dir,
    fail,
    read_class_list,
    read_lines,
    require_split,
    resolve_source,
)

__all__ = [
    "MULTITHUMOS_CLASSES",
    "load",
    "splits",
    "load_multithumos",
    "multithumos_splits",
]

logger = logging.getLogger("msqnet.data")

SPLITS = ("val", "test")
VIDEO_INFO = "TH14_video_info.json"
AMBIGUOUS = "Ambiguous"
MULTITHUMOS_FILE = "multithumos.json"
# The JSON's subset names for our split names (MultiTHUMOS trains on THUMOS14's validation videos).
MULTITHUMOS_SUBSETS = {"train": "training", "val": "training", "test": "testing"}
# Class ids 1..65 of multithumos.json in order (MultiTHUMOS class_list.txt; the first 20 are THUMOS14's).
MULTITHUMOS_CLASSES = (
    "BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk", "CliffDiving", "CricketBowling",
    "CricketShot", "Diving", "FrisbeeCatch", "GolfSwing", "HammerThrow", "HighJump", "JavelinThrow",
    "LongJump", "PoleVault", "Shotput", "SoccerPenalty", "TennisSwing", "ThrowDiscus",
    "VolleyballSpiking", "Walk", "Sit", "StandUp", "Stand", "Run", "Jump", "Fall", "PickUp", "Hug",
    "PatPerson", "HighFive", "FistPump", "ClapHands", "OneRaisedArmCelebrate", "TwoRaisedArmCelebrate",
    "Throw", "Drop", "OneHandedCatch", "TwoHandedCatch", "BodyRoll", "BodyTurn", "BodyBend",
    "BodyContract", "Squat", "BasketballDribble", "BasketballPass", "BasketballBlock", "BasketballShot",
    "BasketballGuard", "VolleyballSet", "VolleyballBump", "VolleyballBlock", "VolleyballServe",
    "WeightliftingClean", "WeightliftingJerk", "HammerThrowWindUp", "HammerThrowSpin",
    "HammerThrowRelease", "PoleVaultPlantPole", "ShotPutBend", "DiscusWindUp", "DiscusRelease",
    "TalkToCamera", "CloseUpTalkToCamera", "NoHuman",
)


def splits(cfg) -> list[str]:
    """THUMOS14's annotated splits."""
    return list(SPLITS)


def multithumos_splits(cfg) -> list[str]:
    """MultiTHUMOS' splits (``train`` and ``val`` name the same subset)."""
    return list(MULTITHUMOS_SUBSETS)


def _find(folder: Path, name: str) -> Path | None:
    """``name`` in ``folder`` or its parent (the info file sits beside the per-split folders)."""
    for candidate in (folder / name, folder.parent / name):
        if candidate.is_file():
            return candidate
    return None


def _read_video_info(path: Path | None) -> dict[str, dict]:
    if path is None:
        return {}
    try:
        info = json.loads(read_text(path, "video info file"))
    except json.JSONDecodeError as e:
        raise fail(path, e.lineno, f"not valid JSON ({e.msg})", "{video: {fps, duration, num_frame}}") from None
    if not isinstance(info, dict):
        raise fail(path, None, "top level is not an object", "{video: {fps, duration, num_frame}}")
    return info


def _video_timing(info: dict[str, Any], vid: str) -> tuple[float, float]:
    """``(fps, duration)`` of a video in the video info file; ValueError saying what is wrong."""
    entry = info[vid]
    if not isinstance(entry, dict) or "fps" not in entry or "duration" not in entry:
        raise ValueError(f"entry of video {quote(vid)} lacks fps or duration")
    try:
        fps = parse_fps(entry["fps"])
        duration = float(entry["duration"])
    except (TypeError, ValueError):
        fps = duration = None
    if fps is None or duration is None or not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"video {quote(vid)}: fps {quote(entry['fps'])}, duration {quote(entry['duration'])}")
    return fps, duration


def _class_files(annotations: Path, split: str) -> dict[str, Path]:
    """``{class name: <Class>_<split>.txt}`` of the split, Ambiguous excluded."""
    if annotations.is_file():
        raise ConfigError(f"{annotations}: thumos14 needs the folder of per-class files, not one file")
    folders = [annotations / f"annotations_{split}", annotations / split, annotations]
    for folder in folders:
        files = sorted(folder.glob(f"*_{split}.txt")) if folder.is_dir() else []
        if files:
            return {p.name[: -len(f"_{split}.txt")]: p for p in files if not p.name.startswith(AMBIGUOUS + "_")}
    raise FileNotFoundError(
        f"{annotations}: no THUMOS14 per-class files *_{split}.txt in {', '.join(str(f) for f in folders)}"
    )


def _source(root: str, vid: str, opts, log: ProblemLog, file: Path, line: int | None) -> str | None:
    return resolve_source(root, vid + opts.video_ext if opts.source == "video" else vid, log, file, line)


def load(cfg, split: str) -> DatasetSplit:
    """Load THUMOS14's val or test instances as single-label trimmed clips."""
    require_split("thumos14", split, SPLITS)
    opts = cfg.format_options()
    annotations = Path(cfg.annotations)
    annotation_dir(cfg.annotations)  # existence check with a clear message
    files = _class_files(annotations, split)
    if cfg.classes:
        class_names, descriptions = read_class_list(cfg.classes)
        unknown = sorted(set(files) - set(class_names))
        if unknown:
            raise fail(files[unknown[0]], None, f"class {quote(unknown[0])} is not in the class list {cfg.classes}", "a listed class")
    else:
        class_names, descriptions = sorted(files), None
    info_file = _find(files[next(iter(files))].parent, VIDEO_INFO)
    info = _read_video_info(info_file)
    log = ProblemLog(cfg.on_error)
    records: list[ClipRecord] = []
    late: list[str] = []  # file:line of instances that end after their video
    for cid, name in enumerate(class_names):
        if name not in files:
            continue
        file = files[name]
        for line, raw in enumerate(read_lines(file), 1):
            if not raw.strip():
                continue
            parts = raw.split()
            if len(parts) != 3:
                log.report(file, line, f"{len(parts)} fields in {quote(raw.strip())}", "'<video> <start s> <end s>'")
                continue
            vid = parts[0]
            try:
                start, end = float(parts[1]), float(parts[2])
            except ValueError:
                log.report(file, line, f"bad times in {quote(raw.strip())}", "start and end in seconds")
                continue
            if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
                log.report(file, line, f"bad segment [{parts[1]}, {parts[2]}]", "0 <= start < end")
                continue
            meta = {"class": name}
            if info:
                if vid not in info:
                    log.report(file, line, f"video {quote(vid)} is not in {VIDEO_INFO}", "a THUMOS14 video id")
                    continue
                try:
                    fps, duration = _video_timing(info, vid)
                except ValueError as e:
                    log.report(info_file, None, str(e), "positive numbers fps and duration")
                    continue
                meta["fps"] = f"{fps:g}"
                if end > duration:
                    # The official files hold such instances (even some starting after the end);
                    # they are counted in the benchmark's totals, so keep them and say so.
                    late.append(f"{file.name}:{line}")
            source = _source(cfg.root, vid, opts, log, file, line)
            if source is None:
                continue
            meta["video"] = vid
            records.append(ClipRecord(f"{vid}@{start:g}-{end:g}/{name}", source, (cid,), start, end, meta))
    if late:
        logger.info(
            "thumos14 %s: %d instances end after their video's duration in %s (e.g. %s); the decoder clamps them",
            split, len(late), VIDEO_INFO, ", ".join(late[:3]),
        )
    log.summarize(f"thumos14 {split}")
    return DatasetSplit(split, records, class_names, False, descriptions, None, log.problems)


def _windows(duration: float, window: float, stride: float) -> list[tuple[float, float]]:
    """Windows ``[start, start + window]`` covering ``[0, duration]``; the last one ends at the video's end."""
    if window <= 0 or duration <= window:
        return [(0.0, duration)]
    out = []
    start = 0.0
    while start + window <= duration + 1e-6:
        out.append((start, start + window))
        start += stride
    if out[-1][1] < duration - 1e-6:
        out.append((duration - window, duration))
    return out


def load_multithumos(cfg, split: str) -> DatasetSplit:
    """Load MultiTHUMOS windows (multi-label, 65 classes) of the train (= val) or test videos."""
    require_split("multithumos", split, MULTITHUMOS_SUBSETS)
    opts = cfg.format_options()
    if opts.window < 0 or (opts.stride is not None and opts.stride <= 0) or opts.min_overlap < 0:
        raise ConfigError("format 'multithumos': options.window >= 0, options.stride > 0 and options.min_overlap >= 0 expected")
    stride = opts.stride or opts.window
    path = Path(cfg.annotations)
    file = path / MULTITHUMOS_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file}: MultiTHUMOS annotation file not found")
    if cfg.classes:
        class_names, descriptions = read_class_list(cfg.classes)
    else:
        class_names, descriptions = list(MULTITHUMOS_CLASSES), None
    try:
        data = json.loads(read_text(file, "annotation file"))
    except json.JSONDecodeError as e:
        raise fail(file, e.lineno, f"not valid JSON ({e.msg})", "{video: {subset, duration, actions}}") from None
    if not isinstance(data, dict) or not data:
        raise fail(file, None, "top level is not a non-empty object", "{video: {subset, duration, actions}}")
    subset = MULTITHUMOS_SUBSETS[split]
    info_file = _find(file.parent, VIDEO_INFO)
    info = _read_video_info(info_file)
    log = ProblemLog(cfg.on_error)
    records: list[ClipRecord] = []
    num_classes = len(class_names)
    for vid, entry in data.items():
        where = f"video {quote(vid)}"
        if not isinstance(entry, dict) or not {"subset", "duration", "actions"} <= set(entry):
            log.report(file, None, f"{where} lacks subset/duration/actions", "{subset, duration, actions}")
            continue
        if entry["subset"] != subset:
            continue
        try:
            duration = float(entry["duration"])
            actions = [(int(c) - 1, float(s), float(e)) for c, s, e in entry["actions"]]
        except (TypeError, ValueError):
            log.report(file, None, f"{where}: malformed duration or actions", "actions [[class_1_based, start, end], ...]")
            continue
        bad = [a for a in actions if not 0 <= a[0] < num_classes or a[2] < a[1] or a[1] < 0]
        if bad:
            c, s, e = bad[0]
            log.report(file, None, f"{where}: bad action [{c + 1}, {s}, {e}]", f"class 1..{num_classes} and 0 <= start <= end")
            continue
        if duration <= 0:
            log.report(file, None, f"{where}: duration {duration}", "a positive duration")
            continue
        source = _source(cfg.root, vid, opts, log, file, None)
        if source is None:
            continue
        meta = {"video": vid}
        if vid in info:
            try:
                meta["fps"] = f"{_video_timing(info, vid)[0]:g}"
            except ValueError as e:
                log.report(info_file, None, str(e), "positive numbers fps and duration")
                continue
        cls = np.array([a[0] for a in actions], dtype=np.int64)
        s = np.array([a[1] for a in actions], dtype=np.float64)
        e = np.array([a[2] for a in actions], dtype=np.float64)
        for w0, w1 in _windows(duration, opts.window, stride):
            overlap = np.minimum(e, w1) - np.maximum(s, w0)
            hit = (overlap > 0) & (overlap >= np.minimum(opts.min_overlap, e - s))
            hit |= (s == e) & (w0 <= s) & (s < w1)  # an instant labels the window it falls in
            labels = tuple(sorted(set(cls[hit].tolist())))
            if opts.window <= 0:
                records.append(ClipRecord(vid, source, labels, None, None, meta))
            else:
                records.append(ClipRecord(f"{vid}@{w0:g}-{w1:g}", source, labels, w0, w1, meta))
    if not records and not log.problems:
        raise fail(file, None, f"no videos of subset {quote(subset)}", f"videos with subset {quote(subset)}")
    log.summarize(f"multithumos {split}")
    return DatasetSplit(split, records, class_names, True, descriptions, None, log.problems)
