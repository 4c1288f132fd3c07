"""Dataset checker behind ``msqnet data check``: parse every annotation, count, decode, list problems.

``check_dataset`` loads a split with ``on_error='skip'`` so that every bad line is found in one run
(not only the first), then probes and decodes each video (or a sample of them) and returns a
``CheckReport`` whose ``to_json()`` is the stable machine-readable schema::

    {"format", "split", "fold", "root", "annotations",
     "num_clips", "num_videos", "num_classes", "class_names", "multi_label",
     "labels_per_clip": {"min", "mean", "max", "histogram": {"0": n, "1": n, ...}},
     "clips_per_class": {class name: n, ...},          # in class-id order
     "classes_without_clips": [name, ...],
     "segments": {name: [class ids]} | null,
     "decode": {"checked", "ok", "failed", "total_videos", "skipped"},
     "errors": [{"file", "line", "message"}, ...], "num_errors"}
"""
from __future__ import annotations

import dataclasses
import random
import statistics
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..utils import InputFileError
from .config import DataConfig
from .datasets import AnnotationError, DatasetSplit, Problem, load_split
from .decode import DecodeError, probe, read_frames, segment_frame_range
from .records import ClipRecord

__all__ = ["CheckReport", "check_dataset", "decode_problems", "SCHEMA_KEYS"]

SCHEMA_KEYS = (
    "format", "split", "fold", "root", "annotations", "num_clips", "num_videos", "num_classes",
    "class_names", "multi_label", "labels_per_clip", "clips_per_class", "classes_without_clips",
    "segments", "decode", "errors", "num_errors",
)
# Decode at a small size: the check is whether frames come out, not what they look like.
_CHECK_SIZE = 32
_FULL_DECODE_CHUNK = 128


@dataclass
class CheckReport:
    """What ``check_dataset`` found in one split."""

    cfg: DataConfig
    split: str
    data: DatasetSplit | None
    errors: list[Problem] = field(default_factory=list)
    decode_checked: int = 0
    decode_failed: int = 0
    decode_skipped: bool = True

    @property
    def ok(self) -> bool:
        """True when no annotation or decoding problem was found."""
        return not self.errors

    def clips_per_class(self) -> dict[str, int]:
        """Clip count of every class, in class-id order."""
        if self.data is None:
            return {}
        counts = Counter(c for r in self.data.records for c in r.labels)
        return {name: counts.get(i, 0) for i, name in enumerate(self.data.class_names)}

    def labels_per_clip(self) -> dict[str, Any]:
        """Min / mean / max and histogram of the number of labels per clip."""
        n = [len(r.labels) for r in self.data.records] if self.data else []
        hist = Counter(n)
        return {
            "min": min(n, default=0),
            "mean": round(statistics.fmean(n), 4) if n else 0.0,
            "max": max(n, default=0),
            "histogram": {str(k): hist[k] for k in sorted(hist)},
        }

    def to_json(self) -> dict[str, Any]:
        """The stable JSON schema of the module docstring."""
        data = self.data
        per_class = self.clips_per_class()
        videos = len({r.source for r in data.records}) if data else 0
        return {
            "format": self.cfg.format,
            "split": self.split,
            "fold": self.cfg.fold,
            "root": self.cfg.root or _default_root(self.cfg),
            "annotations": self.cfg.annotations,
            "num_clips": len(data.records) if data else 0,
            "num_videos": videos,
            "num_classes": data.num_classes if data else 0,
            "class_names": list(data.class_names) if data else [],
            "multi_label": data.multi_label if data else None,
            "labels_per_clip": self.labels_per_clip(),
            "clips_per_class": per_class,
            "classes_without_clips": [k for k, v in per_class.items() if v == 0],
            "segments": data.segments if data else None,
            "decode": {
                "checked": self.decode_checked,
                "ok": self.decode_checked - self.decode_failed,
                "failed": self.decode_failed,
                "total_videos": videos,
                "skipped": self.decode_skipped,
            },
            "errors": [{"file": p.file, "line": p.line, "message": p.message} for p in self.errors],
            "num_errors": len(self.errors),
        }

    def summary(self, max_errors: int = 50) -> str:
        """Readable multi-line summary: counts, class balance, decode result and each problem."""
        j = self.to_json()
        name = f"{j['format']} {j['split']}" + (f" (fold {j['fold']})" if j["fold"] is not None else "")
        lines = []
        if self.data is not None:
            kind = "multi-label" if j["multi_label"] else "single-label"
            if self.data.multi_label_inferred:
                kind += (" (every clip has exactly one label, so training treats it as single-label; "
                         "data.options.multi_label=true overrides)")
            lines.append(f"{name}: {j['num_clips']:,} clips from {j['num_videos']:,} videos, {j['num_classes']} classes, {kind}")
            lpc = j["labels_per_clip"]
            hist = ", ".join(f"{k}: {v:,}" for k, v in lpc["histogram"].items())
            lines.append(f"labels per clip: min {lpc['min']}, mean {lpc['mean']:.2f}, max {lpc['max']}  [{hist}]")
            lines.extend(_class_balance(j["clips_per_class"]))
            if j["segments"]:
                lines.append("segments: " + ", ".join(f"{k} {len(v)} classes" for k, v in j["segments"].items()))
        else:
            lines.append(f"{name}: annotations could not be read")
        d = j["decode"]
        if d["skipped"]:
            lines.append("decoding: not checked" + (" (--no-decode)" if self.data is not None else ""))
        else:
            lines.append(f"decoding: {d['checked']:,} of {d['total_videos']:,} videos checked, {d['ok']:,} ok, {d['failed']:,} failed")
        if self.errors:
            lines.append(f"problems ({len(self.errors)}):")
            lines.extend(f"  {p}" for p in self.errors[:max_errors])
            if len(self.errors) > max_errors:
                lines.append(f"  ... and {len(self.errors) - max_errors} more (use --json for all)")
            lines.append(f"FAILED: {len(self.errors)} problem(s)")
        else:
            lines.append("OK: no problems found")
        return "\n".join(lines)


def _default_root(cfg: DataConfig) -> str:
    """The root a config without one uses (generic: the annotation file's folder)."""
    path = Path(cfg.annotations)
    return str(path if path.is_dir() else path.parent)


def _class_balance(per_class: dict[str, int], show: int = 5) -> list[str]:
    """Compact clips-per-class lines: min / median / max, rarest and most frequent classes."""
    if not per_class:
        return []
    ranked = sorted(per_class.items(), key=lambda kv: (kv[1], kv[0]))
    values = [v for _, v in ranked]
    lines = [
        f"clips per class: min {values[0]:,}, median {statistics.median(values):g}, max {values[-1]:,}; "
        f"{sum(v == 0 for v in values)} classes without clips"
    ]
    if len(ranked) > 2 * show:
        lines.append("  rarest: " + ", ".join(f"{k} {v:,}" for k, v in ranked[:show]))
        lines.append("  most frequent: " + ", ".join(f"{k} {v:,}" for k, v in reversed(ranked[-show:])))
    else:
        lines.append("  " + ", ".join(f"{k} {v:,}" for k, v in per_class.items()))
    return lines


def decode_problems(source: str, records: list[ClipRecord], full: bool = False) -> list[Problem]:
    """Probe and decode one video (first, middle and last frame, or every frame with ``full``).

    Also checks that each record's segment falls inside the video. Returns the problems found.
    """
    try:
        fps = records[0].fps
        info = probe(source, fps=fps)
        n = info.num_frames
        if full:
            for i in range(0, n, _FULL_DECODE_CHUNK):
                read_frames(source, range(i, min(n, i + _FULL_DECODE_CHUNK)), size=_CHECK_SIZE, fps=fps)
        else:
            read_frames(source, sorted({0, n // 2, n - 1}), size=_CHECK_SIZE, fps=fps)
    except (DecodeError, OSError, ValueError) as e:
        return [Problem(source, None, str(e).removeprefix(f"{source}: "))]
    problems = []
    for r in records:
        if r.start is None and r.end is None:
            continue
        try:
            segment_frame_range(info, r.start, r.end)
        except ValueError as e:
            problems.append(Problem(source, None, f"clip {r.uid}: {e}"))
    return problems


def check_dataset(
    cfg: DataConfig,
    split: str,
    *,
    decode: bool = True,
    sample: int | None = None,
    full: bool = False,
    workers: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> CheckReport:
    """Parse one split (collecting every bad line), count it and decode its videos.

    ``sample`` decodes only that many videos, drawn with ``seed``; ``full`` decodes every frame
    instead of the first, middle and last; ``workers`` threads decode in parallel.
    """
    report = CheckReport(cfg, split, None)
    try:
        report.data = load_split(dataclasses.replace(cfg, on_error="skip"), split)
    except AnnotationError as e:
        report.errors.append(e.problem)
        return report
    except InputFileError as e:
        report.errors.append(Problem(e.path, e.line, f"{e.what}; expected {e.expected}"))
        return report
    except OSError as e:  # missing file, a folder where a file belongs, no permission
        message = str(e)
        file = e.filename or message.split(": ", 1)[0]
        report.errors.append(Problem(str(file), None, message.removeprefix(f"{file}: ")))
        return report
    report.errors.extend(report.data.problems)
    if not decode:
        return report
    by_source: dict[str, list[ClipRecord]] = {}
    for r in report.data.records:
        by_source.setdefault(r.source, []).append(r)
    sources = list(by_source)
    if sample is not None and sample < len(sources):
        order = {s: i for i, s in enumerate(sources)}
        sources = sorted(random.Random(seed).sample(sources, sample), key=order.__getitem__)
    report.decode_skipped = False
    found: dict[str, list[Problem]] = {}
    bar = tqdm(total=len(sources), desc=f"decoding {split}", unit="video", disable=not progress)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(decode_problems, s, by_source[s], full): s for s in sources}
        for future in futures:
            found[futures[future]] = future.result()
            bar.update(1)
    bar.close()
    for s in sources:  # annotation order, whatever order the threads finished in
        report.errors.extend(found[s])
    report.decode_checked = len(sources)
    report.decode_failed = sum(1 for s in sources if found[s])
    return report
