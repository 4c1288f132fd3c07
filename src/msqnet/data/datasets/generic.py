"""The generic annotation format, for users' own data (and the synthetic benchmark).

Layout::

    <annotations>/classes.txt      one class name per line; line order is the class id
      (or classes.json)            [{"name": "run", "description": "..."}, ...]
    <annotations>/train.csv        path,labels[,id,start,end,<any meta column>...]
    <annotations>/test.jsonl       {"path": ..., "labels": [...], "id"?, "start"?, "end"?, "meta"?}

CSV: a header row naming at least ``path`` and ``labels``; labels are separated by ``;`` and each
is a class name or an integer id; an empty cell means a clip with no action. ``start``/``end`` are
seconds (empty = whole video). Every other column goes to the record's ``meta``.
JSONL: one object per line with ``path``, ``labels`` (a list of names or ids) and optionally ``id``,
``start``, ``end`` and ``meta`` (an object of scalars).

Paths are relative to ``root`` (default: the annotation file's folder) and may not leave it. A split
name picks ``<annotations>/<split>.csv`` or ``.jsonl`` when ``annotations`` is a folder; when it is
a file, the split name must be the file's name without extension.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ...config_loader import ConfigError
from ...utils import quote, read_csv_rows, read_text
from ..records import ClipRecord, parse_fps
from .base import (
    DatasetSplit,
    ProblemLog,
    annotation_dir,
    fail,
    read_class_list,
    resolve_source,
)

__all__ = ["load", "splits", "CSV_COLUMNS", "JSONL_KEYS"]

CSV_COLUMNS = ("path", "labels", "id", "start", "end")
JSONL_KEYS = ("path", "labels", "id", "start", "end", "meta")
LABEL_SEPARATOR = ";"
_INT = re.compile(r"^[+-]?\d+$")


def _split_names(folder: Path) -> list[str]:
    """Stems of the split files (``*.csv``, ``*.jsonl``, not the class list) in a folder."""
    return sorted({p.stem for p in folder.iterdir() if p.suffix in (".csv", ".jsonl") and p.stem != "classes"})


def splits(cfg) -> list[str]:
    """Split names available under the annotation folder (or the one a single file names)."""
    path = Path(cfg.annotations)
    if path.is_file():
        return [path.stem]
    return _split_names(path) if path.is_dir() else []


def split_file(annotations: str, split: str) -> Path:
    """The annotation file of ``split``: ``<folder>/<split>.csv|.jsonl``, or the named file itself."""
    path = Path(annotations)
    if path.is_file():
        if path.stem != split:
            raise ConfigError(
                f"annotations names the file {path} (split {quote(path.stem)}) but split {quote(split)} was asked for; "
                f"point annotations at the folder holding {split}.csv or {split}.jsonl"
            )
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: annotation file or folder not found")
    found = [p for p in (path / f"{split}.csv", path / f"{split}.jsonl") if p.is_file()]
    if not found:
        available = _split_names(path)
        raise FileNotFoundError(
            f"{path}: no {split}.csv or {split}.jsonl for split {quote(split)}; splits found: {available or 'none'}"
        )
    if len(found) > 1:
        raise ConfigError(f"{path}: both {split}.csv and {split}.jsonl exist; keep one")
    return found[0]


def read_classes(classes: str | None, folder: Path) -> tuple[list[str], list[str] | None]:
    """The class list: ``classes`` when given, else ``classes.json`` or ``classes.txt`` beside the annotations.

    When both files exist, ``classes.json`` is used (it has descriptions) and must name the same
    classes in the same order as ``classes.txt``.
    """
    if classes:
        return read_class_list(classes)
    txt, js = folder / "classes.txt", folder / "classes.json"
    if not txt.is_file() and not js.is_file():
        raise FileNotFoundError(
            f"{folder}: no class list; expected classes.txt (one name per line) or classes.json, "
            "or set `classes` to the class list file"
        )
    if not js.is_file():
        return read_class_list(txt)
    names, descriptions = read_class_list(js)
    if txt.is_file() and read_class_list(txt)[0] != names:
        raise ConfigError(f"{folder}: classes.txt and classes.json list different classes or orders; keep one or set `classes`")
    return names, descriptions


class _Builder:
    """Turns parsed rows into ClipRecords, checking labels, times, paths and uniqueness."""

    def __init__(self, file: Path, root: str, class_names: list[str], multi_label: bool, log: ProblemLog) -> None:
        self.file = file
        self.root = root
        self.class_names = class_names
        self.by_name = {name: i for i, name in enumerate(class_names)}
        self.multi_label = multi_label
        self.log = log
        self.first_line: dict[str, int] = {}
        self.records: list[ClipRecord] = []

    def label_id(self, token: Any, line: int) -> int | None:
        """Class id of a label given as a class name or an integer id."""
        num_classes = len(self.class_names)
        if isinstance(token, str):
            token = token.strip()
            if token in self.by_name:
                return self.by_name[token]
            if not _INT.match(token):
                self.log.report(self.file, line, f"unknown class name {quote(token)}", "a name from the class list or an id")
                return None
            token = int(token)
        if isinstance(token, bool) or not isinstance(token, int):
            self.log.report(self.file, line, f"label {quote(token)} is a {type(token).__name__}", "a class name or an integer id")
            return None
        if not 0 <= token < num_classes:
            self.log.report(self.file, line, f"unknown class id {token}", f"an id in 0..{num_classes - 1}")
            return None
        return token

    def seconds(self, value: Any, key: str, line: int) -> tuple[bool, float | None]:
        """Parse a start/end time; returns (ok, seconds or None for 'whole video')."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return True, None
        try:
            if isinstance(value, bool):
                raise ValueError
            t = float(value)
        except (TypeError, ValueError):
            self.log.report(self.file, line, f"bad {key} {quote(value)}", "a time in seconds or empty")
            return False, None
        if not math.isfinite(t) or t < 0:
            self.log.report(self.file, line, f"bad {key} {quote(value)}", "a finite time >= 0 seconds")
            return False, None
        return True, t

    def add(self, line: int, path: str, labels: list[Any], uid: str | None, start: Any, end: Any, meta: dict[str, str]) -> None:
        """Validate one clip and append it; bad clips are reported (and skipped under on_error=skip)."""
        ids = [self.label_id(tok, line) for tok in labels]
        if any(i is None for i in ids):
            return
        ids = sorted(set(ids))
        if not self.multi_label and len(ids) != 1:
            self.log.report(self.file, line, f"{len(ids)} labels in a single-label dataset", "exactly one label")
            return
        ok_start, t0 = self.seconds(start, "start", line)
        ok_end, t1 = self.seconds(end, "end", line)
        if not (ok_start and ok_end):
            return
        if t0 is not None and t1 is not None and t1 <= t0:
            self.log.report(self.file, line, f"end {t1} is not after start {t0}", "start < end")
            return
        try:
            parse_fps(meta.get("fps"))
        except ValueError:
            self.log.report(self.file, line, f"column fps is {quote(meta['fps'])}", "a positive frame rate or empty")
            return
        source = resolve_source(self.root, path, self.log, self.file, line)
        if source is None:
            return
        if not uid:
            uid = path.strip()
            if t0 is not None or t1 is not None:
                uid += f"@{'' if t0 is None else f'{t0:g}'}-{'' if t1 is None else f'{t1:g}'}"
        if uid in self.first_line:
            self.log.report(self.file, line, f"duplicate clip id {quote(uid)} (first on line {self.first_line[uid]})", "unique ids")
            return
        self.first_line[uid] = line
        self.records.append(ClipRecord(uid, source, tuple(ids), t0, t1, meta))


def _parse_csv(builder: _Builder) -> int:
    """Feed every row of a CSV annotation file to ``builder``; returns the number of data rows."""
    file = builder.file
    lines = read_csv_rows(file, "annotation file")
    header = lines[0][1] if lines else None
    if header is None or not any(h.strip() for h in header):
        raise fail(file, None, "annotation file is empty", "a header row naming path and labels")
    columns = [h.strip() for h in header]
    for name in ("path", "labels"):
        if name not in columns:
            raise fail(file, 1, f"missing column {quote(name)} in header {columns}", "a header with path and labels")
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise fail(file, 1, f"duplicate columns {dup}", "each column once")
    rows = 0
    for line, values in lines[1:]:  # a quoted field may span lines; ``line`` is the first
        if not values or all(not v.strip() for v in values):
            continue
        rows += 1
        if len(values) != len(columns):
            builder.log.report(file, line, f"{len(values)} fields, the header has {len(columns)}", f"{len(columns)} comma-separated fields")
            continue
        row = dict(zip(columns, values))
        raw = row["labels"].strip()
        labels = [tok.strip() for tok in raw.split(LABEL_SEPARATOR)] if raw else []
        if any(not tok for tok in labels):
            builder.log.report(file, line, f"empty label in {quote(raw)}", f"labels separated by '{LABEL_SEPARATOR}'")
            continue
        meta = {k: v for k, v in row.items() if k not in CSV_COLUMNS}
        builder.add(line, row["path"], labels, (row.get("id") or "").strip() or None, row.get("start"), row.get("end"), meta)
    return rows


def _parse_jsonl(builder: _Builder) -> int:
    """Feed every object of a JSONL annotation file to ``builder``; returns the number of data lines."""
    file = builder.file
    text = read_text(file, "annotation file")
    if not text.strip():
        raise fail(file, None, "annotation file is empty", "one JSON object per line")
    rows = 0
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        rows += 1
        expected = 'an object like {"path": "a.mp4", "labels": ["run"]}'
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            builder.log.report(file, line, f"not valid JSON ({e.msg})", expected)
            continue
        if not isinstance(obj, dict):
            builder.log.report(file, line, f"a JSON {type(obj).__name__}", expected)
            continue
        unknown = sorted(set(obj) - set(JSONL_KEYS))
        missing = [k for k in ("path", "labels") if k not in obj]
        if unknown or missing:
            what = f"unknown keys {unknown}" if unknown else f"missing keys {missing}"
            builder.log.report(file, line, what, f"keys {list(JSONL_KEYS)} (path and labels required)")
            continue
        path, labels, meta = obj["path"], obj["labels"], obj.get("meta") or {}
        if not isinstance(path, str):
            builder.log.report(file, line, f"path is a {type(path).__name__}", "a string")
            continue
        if not isinstance(labels, list):
            builder.log.report(file, line, f"labels is a {type(labels).__name__}", "a list of class names or ids")
            continue
        if not isinstance(meta, dict) or any(isinstance(v, (dict, list)) for v in meta.values()):
            builder.log.report(file, line, "meta is not an object of scalars", 'an object like {"actor": "dog"}')
            continue
        uid = obj.get("id")
        if uid is not None and not isinstance(uid, (str, int)):
            builder.log.report(file, line, f"id is a {type(uid).__name__}", "a string or integer")
            continue
        meta = {str(k): "" if v is None else str(v) for k, v in meta.items()}
        builder.add(line, path, labels, None if uid is None else str(uid), obj.get("start"), obj.get("end"), meta)
    return rows


def load(cfg, split: str) -> DatasetSplit:
    """Load one split of a generic CSV / JSONL dataset."""
    opts = cfg.format_options()
    file = split_file(cfg.annotations, split)
    folder = annotation_dir(cfg.annotations)
    class_names, descriptions = read_classes(cfg.classes, folder)
    root = cfg.root or str(file.parent)
    log = ProblemLog(cfg.on_error)
    builder = _Builder(file, root, class_names, opts.multi_label is not False, log)
    rows = _parse_jsonl(builder) if file.suffix == ".jsonl" else _parse_csv(builder)
    if rows == 0:
        raise fail(file, None, "annotation file has no clips", "at least one annotation row")
    log.summarize(str(file))
    multi_label, inferred = opts.multi_label, opts.multi_label is None
    if inferred:  # single-label exactly when every clip has one label
        multi_label = not builder.records or any(len(r.labels) != 1 for r in builder.records)
    return DatasetSplit(split, builder.records, class_names, multi_label, descriptions, None, log.problems,
                        multi_label_inferred=inferred and not multi_label)
