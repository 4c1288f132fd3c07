"""Charades (Sigurdsson et al., ECCV 2016): 157 multi-label indoor activities.

Annotation files (``annotations`` = the folder holding them, or one split's CSV):

* ``Charades_v1_classes.txt``: ``c000 Holding some clothes``, one class per line, ``cNNN`` = id.
* ``Charades_v1_train.csv`` / ``Charades_v1_test.csv``: quoted CSV with columns
  ``id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length``;
  ``actions`` is ``c092 11.90 21.20;c147 0.00 12.60`` (class, start s, end s) and may be empty.

By default a record is a whole video labelled with the union of its actions (the standard
classification protocol). Every test video is kept, also those without actions (the official
``Charades_v1_classify.m`` scores every row); train videos without actions are dropped (they carry
no positive label) unless ``keep_unlabeled_train``. With ``segments: true`` each action instance
becomes its own record with its start / end. ``root`` holds ``<id>.mp4`` (``source: video``) or
frame folders ``<id>/<id>-NNNNNN.jpg`` at 24 fps (``source: frames``).
"""
from __future__ import annotations

import logging
import math
import re
from pathlib import Path

from ...utils import quote, read_csv_rows
from ..records import ClipRecord
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

__all__ = ["load", "splits", "read_charades_classes"]

logger = logging.getLogger("msqnet.data")

SPLITS = ("train", "test")
CLASS_FILE = "Charades_v1_classes.txt"
META_COLUMNS = ("subject", "scene", "quality", "relevance", "verified", "length")
_CODE = re.compile(r"^c(\d{3})$")


def splits(cfg) -> list[str]:
    """Charades' splits."""
    return list(SPLITS)


def read_charades_classes(path: Path) -> list[str]:
    """Class names from ``Charades_v1_classes.txt`` (``cNNN name`` lines, NNN = 0, 1, 2, ...)."""
    names: list[str] = []
    for line, raw in enumerate(read_lines(path, "class list"), 1):
        if not raw.strip():
            continue
        code, _, name = raw.strip().partition(" ")
        m = _CODE.match(code)
        if not m or not name.strip():
            raise fail(path, line, f"bad class line {quote(raw.strip())}", "'cNNN class name'")
        if int(m.group(1)) != len(names):
            raise fail(path, line, f"class {code} out of order", f"c{len(names):03d}")
        names.append(name.strip())
    return names


def _split_csv(annotations: Path, split: str) -> Path:
    if annotations.is_file():
        other = [s for s in SPLITS if s != split and f"_{s}" in annotations.stem.lower()]
        if other:
            raise fail(annotations, None, f"file name says split {quote(other[0])} but split {quote(split)} was asked for",
                       f"Charades_v1_{split}.csv or the folder holding it")
        return annotations
    path = annotations / f"Charades_v1_{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Charades annotation file not found")
    return path


def _parse_actions(raw: str, by_code: dict[str, int], log: ProblemLog, file: Path, line: int) -> list[tuple[int, float, float]] | None:
    """``c092 11.90 21.20;c147 0.00 12.60`` -> [(92, 11.9, 21.2), (147, 0.0, 12.6)]; None when malformed."""
    out = []
    for item in raw.split(";"):
        parts = item.split()
        if len(parts) != 3:
            log.report(file, line, f"bad action {quote(item.strip())}", "'cNNN start end' items separated by ';'")
            return None
        code, s, e = parts
        if code not in by_code:
            log.report(file, line, f"unknown class {quote(code)}", f"a class of {CLASS_FILE} (c000..c{len(by_code) - 1:03d})")
            return None
        try:
            start, end = float(s), float(e)
        except ValueError:
            log.report(file, line, f"bad time in action {quote(item.strip())}", "start and end in seconds")
            return None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0:
            log.report(file, line, f"bad time in action {quote(item.strip())}", "finite times >= 0")
            return None
        out.append((by_code[code], start, end))
    return out


def load(cfg, split: str) -> DatasetSplit:
    """Load the train or test split of Charades (video-level labels, or trimmed segments)."""
    require_split("charades", split, SPLITS)
    opts = cfg.format_options()
    folder = annotation_dir(cfg.annotations)
    file = _split_csv(Path(cfg.annotations), split)
    if cfg.classes and not Path(cfg.classes).name.startswith("Charades_v1_classes"):
        class_names, descriptions = read_class_list(cfg.classes)
    else:
        class_names, descriptions = read_charades_classes(Path(cfg.classes) if cfg.classes else folder / CLASS_FILE), None
    by_code = {f"c{i:03d}": i for i in range(len(class_names))}
    log = ProblemLog(cfg.on_error)
    records: list[ClipRecord] = []
    first_line: dict[str, int] = {}
    dropped = no_action = 0
    rows = read_csv_rows(file, "annotation file")
    header = [h.strip() for h in rows[0][1]] if rows else []
    if not header:
        raise fail(file, None, "annotation file is empty", "a header row id,...,actions,length")
    for col in ("id", "actions"):
        if col not in header:
            raise fail(file, 1, f"missing column {quote(col)} in header {header}", "id,subject,scene,...,actions,length")
    for line, row in rows[1:]:  # descriptions may span lines; ``line`` is the first
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            log.report(file, line, f"{len(row)} fields, the header has {len(header)}", f"{len(header)} comma-separated (quoted) fields")
            continue
        fields = dict(zip(header, row))
        vid = fields["id"].strip()
        if vid in first_line:
            log.report(file, line, f"duplicate video id {quote(vid)} (first on line {first_line[vid]})", "unique ids")
            continue
        raw = fields["actions"].strip()
        actions = _parse_actions(raw, by_code, log, file, line) if raw else []
        if actions is None:
            continue
        rel = vid + opts.video_ext if opts.source == "video" else vid
        source = resolve_source(cfg.root, rel, log, file, line)
        if source is None:
            continue
        first_line[vid] = line
        meta = {k: fields[k].strip() for k in META_COLUMNS if k in fields}
        if opts.source == "frames":
            meta["fps"] = f"{opts.fps:g}"
        if not actions:
            no_action += 1
            if split == "train" and not opts.keep_unlabeled_train and not opts.segments:
                dropped += 1
                continue
        if not opts.segments:
            labels = tuple(sorted({c for c, _, _ in actions}))
            records.append(ClipRecord(vid, source, labels, None, None, meta))
            continue
        for k, (c, start, end) in enumerate(actions):
            if end <= start:
                log.report(file, line, f"action {k} (c{c:03d}) ends at {end} s, not after its start {start} s", "start < end")
                continue
            records.append(ClipRecord(f"{vid}@{k}", source, (c,), start, end, meta))
    if not first_line and not log.problems:
        raise fail(file, None, "annotation file has no videos", "at least one row after the header")
    if no_action:
        what = "dropped (keep_unlabeled_train: false)" if dropped else ("no segments" if opts.segments else "kept with no labels")
        logger.info("%s: %d videos have no actions: %s", file, no_action, what)
    log.summarize(f"{file} ({split})")
    return DatasetSplit(split, records, class_names, not opts.segments, descriptions, None, log.problems)
