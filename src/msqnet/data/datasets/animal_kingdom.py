"""Animal Kingdom action recognition (Ng et al., CVPR 2022): 140 multi-label actions of any animal.

Annotation files (``annotations`` = the folder holding them, or one clip table):

* ``AR_metadata_AR.csv``: the ``AR`` sheet of the official ``AR_metadata.xlsx`` exported to CSV,
  columns ``S/N,video_id,type,labels,list_animal_action`` (``type`` = train/test, ``labels`` =
  comma-separated class ids). Preferred when present; species go to ``meta['animals']``.
* or the official per-frame tables ``train.csv`` / ``val.csv`` (space-separated
  ``original_vido_id video_id frame_id path labels``, one row per frame; ``path`` is relative to
  the ``image/`` folder), or the MSQNet reference's ``train_light.csv`` / ``val_light.csv``
  (``video_id;labels``). ``test`` reads ``test*`` or ``val*`` files.
* ``AR_metadata_Action.csv``: class names (``Label,Category,Action,Description``); the one label
  the sheet leaves as ``#N/A`` (Yawning) gets the one missing id (139).
* ``df_action_AR_count.csv`` (optional): head / middle / tail segments, joined to the classes by
  action name (case-insensitive) because its ``index`` column is wrong for 6 classes.

``root`` is the ``image/`` folder of frame folders (``source: frames``, default) or a folder of
``<video_id>.mp4`` files (``source: video``).
"""
from __future__ import annotations

import ast
from pathlib import Path

from ...utils import quote, read_csv_rows, read_text
from ..options import AnimalKingdomOptions
from ..records import ClipRecord
from .base import (
    DatasetSplit,
    ProblemLog,
    annotation_dir,
    fail,
    read_class_list,
    require_split,
    resolve_source,
)

__all__ = ["load", "splits", "read_action_classes", "read_segments"]

SPLITS = ("train", "test")
METADATA_TABLE = "AR_metadata_AR.csv"
ACTION_TABLE = "AR_metadata_Action.csv"
SEGMENT_TABLE = "df_action_AR_count.csv"
PER_FRAME_HEADER = ["original_vido_id", "video_id", "frame_id", "path", "labels"]
# Split name -> file stems that hold it (the official release calls its test split "val").
_SPLIT_STEMS = {"train": ("train",), "test": ("test", "val")}


def splits(cfg) -> list[str]:
    """Animal Kingdom's splits."""
    return list(SPLITS)


def _norm(name: str) -> str:
    """Action name as a join key: case- and whitespace-insensitive."""
    return " ".join(name.split()).casefold()


def read_action_classes(path: Path) -> tuple[list[str], list[str]]:
    """Class names and descriptions from ``AR_metadata_Action.csv``, ordered by label id."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: class table not found; export the 'Action' sheet of AR_metadata.xlsx as {ACTION_TABLE} "
            "or set `classes`"
        )
    rows = [row for _, row in read_csv_rows(path, "class table")]
    if not rows:
        raise fail(path, None, "class table is empty", "a header Label,Category,Action,Description")
    header = [h.strip() for h in rows[0]]
    for col in ("Label", "Action"):
        if col not in header:
            raise fail(path, 1, f"missing column {quote(col)} in header {header}", "Label,Category,Action,Description")
    li, ai = header.index("Label"), header.index("Action")
    di = header.index("Description") if "Description" in header else None
    by_id: dict[int, tuple[str, str, int]] = {}
    unnumbered: list[tuple[str, str, int]] = []
    for line, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(li, ai):  # the Description cell is often left empty
            raise fail(path, line, f"{len(row)} fields", "at least Label,Category,Action")
        name, desc = row[ai].strip(), (row[di].strip() if di is not None and di < len(row) else "")
        label = row[li].strip()
        if not label.isdigit():
            unnumbered.append((name, desc, line))  # the sheet's '#N/A' (Yawning)
            continue
        i = int(label)
        if i in by_id:
            raise fail(path, line, f"duplicate label {i} (first on line {by_id[i][2]})", "unique labels")
        by_id[i] = (name, desc, line)
    num = len(by_id) + len(unnumbered)
    missing = [i for i in range(num) if i not in by_id]
    if len(unnumbered) > 1 or len(missing) != len(unnumbered):
        line = unnumbered[0][2] if unnumbered else None
        raise fail(path, line, f"labels do not form 0..{num - 1} (missing {missing[:5]}, unnumbered {len(unnumbered)})",
                   "consecutive label ids, at most one '#N/A'")
    for i, entry in zip(missing, unnumbered):
        by_id[i] = entry
    names = [by_id[i][0] for i in range(num)]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if _norm(name) in seen:
            raise fail(path, by_id[i][2], f"duplicate action name {quote(name)}", "unique action names")
        seen[_norm(name)] = i
    return names, [by_id[i][1] for i in range(num)]


def read_segments(path: Path, class_names: list[str], log: ProblemLog) -> dict[str, list[int]]:
    """Head / middle / tail class ids from ``df_action_AR_count.csv``, joined to classes by name."""
    by_name = {_norm(n): i for i, n in enumerate(class_names)}
    segments: dict[str, list[int]] = {}
    assigned: dict[int, int] = {}
    rows = read_csv_rows(path, "segment table")
    header = [h.strip() for h in rows[0][1]] if rows else []
    for col in ("action", "segment"):
        if col not in header:
            raise fail(path, 1, f"missing column {quote(col)} in header {header}", "S/N,action_category,action,index,segment,count")
    ai, si = header.index("action"), header.index("segment")
    for line, row in rows[1:]:
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(ai, si):
            log.report(path, line, f"{len(row)} fields", f"{len(header)} fields")
            continue
        name, seg = row[ai].strip(), row[si].strip().lower()
        cid = by_name.get(_norm(name))
        if cid is None:
            log.report(path, line, f"unknown action {quote(name)}", f"an action from {ACTION_TABLE}")
            continue
        if cid in assigned:
            log.report(path, line, f"action {quote(name)} listed twice (first on line {assigned[cid]})", "each action once")
            continue
        assigned[cid] = line
        segments.setdefault(seg, []).append(cid)
    unassigned = [class_names[i] for i in range(len(class_names)) if i not in assigned]
    if unassigned:
        log.report(path, None, f"{len(unassigned)} classes have no segment (e.g. {quote(unassigned[0])})", "every class in one segment")
    order = {"head": 0, "middle": 1, "tail": 2}
    return {k: sorted(v) for k, v in sorted(segments.items(), key=lambda kv: (order.get(kv[0], 3), kv[0]))}


def _sniff(path: Path) -> str:
    """Which clip table a file is: ``metadata``, ``per_frame`` or ``light``, from its header."""
    text = read_text(path, "annotation file")
    first = text.split("\n", 1)[0].strip()
    if not first:
        raise fail(path, None, "annotation file is empty", "a header row")
    if first.split() == PER_FRAME_HEADER:
        return "per_frame"
    if [c.strip() for c in first.split(";")] == ["video_id", "labels"]:
        return "light"
    cols = [c.strip() for c in first.split(",")]
    if "video_id" in cols and "type" in cols and "labels" in cols:
        return "metadata"
    raise fail(
        path, 1, f"unrecognised header {quote(first[:80])}",
        f"{METADATA_TABLE} (S/N,video_id,type,labels,...), a per-frame table ({' '.join(PER_FRAME_HEADER)}) "
        "or a *_light.csv (video_id;labels)",
    )


def _clip_table(annotations: Path, split: str) -> tuple[Path, str]:
    """The file holding ``split``'s clips and its kind."""
    if annotations.is_file():
        kind = _sniff(annotations)
        if kind != "metadata":
            stem = annotations.stem.lower()
            other = [s for s, stems in _SPLIT_STEMS.items() if s != split and stem.startswith(stems)]
            if other:
                raise fail(annotations, None, f"file name says split {quote(other[0])} but split {quote(split)} was asked for",
                           "the folder holding both splits' files, or this split's file")
        return annotations, kind
    if (annotations / METADATA_TABLE).is_file():
        return annotations / METADATA_TABLE, "metadata"
    for suffix in ("_light.csv", ".csv"):
        for stem in _SPLIT_STEMS[split]:
            path = annotations / f"{stem}{suffix}"
            if path.is_file():
                return path, _sniff(path)
    raise FileNotFoundError(
        f"{annotations}: no Animal Kingdom clip table for split {quote(split)}; expected {METADATA_TABLE}, "
        f"{_SPLIT_STEMS[split][0]}_light.csv or {_SPLIT_STEMS[split][0]}.csv"
    )


class _Reader:
    """Parses clip rows into records, checking label ids and paths."""

    def __init__(self, file: Path, root: str, num_classes: int, opts: AnimalKingdomOptions, log: ProblemLog) -> None:
        self.file, self.root, self.num_classes, self.opts, self.log = file, root, num_classes, opts, log
        self.first_line: dict[str, int] = {}
        self.records: list[ClipRecord] = []

    def labels(self, raw: str, line: int) -> tuple[int, ...] | None:
        """Parse ``"2,40"`` into sorted unique ids, reporting anything else."""
        toks = [t.strip() for t in raw.split(",")]
        if not raw.strip() or any(not t.isdigit() for t in toks):
            self.log.report(self.file, line, f"bad labels {quote(raw)}", "comma-separated class ids, e.g. 2,40")
            return None
        ids = sorted({int(t) for t in toks})
        if ids[-1] >= self.num_classes:
            self.log.report(self.file, line, f"unknown class id {ids[-1]}", f"an id in 0..{self.num_classes - 1}")
            return None
        return tuple(ids)

    def add(self, vid: str, rel_frames: str, labels: tuple[int, ...], line: int, meta: dict[str, str]) -> None:
        """Append one clip; ``rel_frames`` is its frame folder relative to the root."""
        if vid in self.first_line:
            self.log.report(self.file, line, f"duplicate video_id {quote(vid)} (first on line {self.first_line[vid]})", "unique video ids")
            return
        rel = rel_frames if self.opts.source == "frames" else vid + self.opts.video_ext
        source = resolve_source(self.root, rel, self.log, self.file, line)
        if source is None:
            return
        self.first_line[vid] = line
        self.records.append(ClipRecord(vid, source, labels, None, None, meta))


def _animals(raw: str) -> str | None:
    """Species named in ``list_animal_action`` (``[('Snake', 'Moving'), ...]``), ``; ``-joined."""
    try:
        items = ast.literal_eval(raw)
        # 411 rows nest the list once more as strings: ['[("Russell\'S Viper", \'Keeping still\')]']
        flat = []
        for item in items:
            flat.extend(ast.literal_eval(item) if isinstance(item, str) else [item])
        animals = sorted({str(a).strip() for a, _ in flat})
    except (ValueError, SyntaxError, TypeError):
        return None
    return "; ".join(animals)


def _read_metadata(reader: _Reader, split: str) -> None:
    file, log = reader.file, reader.log
    rows = read_csv_rows(file, "annotation file")
    header = [h.strip() for h in rows[0][1]]
    vi, ti, li = header.index("video_id"), header.index("type"), header.index("labels")
    aa = header.index("list_animal_action") if "list_animal_action" in header else None
    for line, row in rows[1:]:  # a quoted field may span lines; ``line`` is the first
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            log.report(file, line, f"{len(row)} fields, the header has {len(header)}", f"{len(header)} comma-separated fields")
            continue
        kind = row[ti].strip().lower()
        if kind not in SPLITS:
            log.report(file, line, f"type {quote(row[ti])}", "train or test")
            continue
        if kind != split:
            continue
        labels = reader.labels(row[li], line)
        if labels is None:
            continue
        meta = {}
        if aa is not None:
            animals = _animals(row[aa])
            if animals is None:
                log.report(file, line, f"unparsable list_animal_action {quote(row[aa][:60])}", "a list of (animal, action) pairs")
                continue
            meta["animals"] = animals
        vid = row[vi].strip()
        reader.add(vid, vid, labels, line, meta)


def _read_light(reader: _Reader) -> None:
    file, log = reader.file, reader.log
    for line, row in read_csv_rows(file, "annotation file", delimiter=";")[1:]:
        if not any(c.strip() for c in row):
            continue
        if len(row) != 2:
            log.report(file, line, f"{len(row)} fields", "video_id;labels")
            continue
        labels = reader.labels(row[1], line)
        if labels is not None:
            vid = row[0].strip()
            reader.add(vid, vid, labels, line, {})


def _read_per_frame(reader: _Reader) -> None:
    """Group the per-frame rows by video; a video's labels are the union over its frames."""
    file, log = reader.file, reader.log
    videos: dict[str, dict] = {}
    for line, row in read_csv_rows(file, "annotation file", delimiter=" ", skipinitialspace=True)[1:]:
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != 5:
            log.report(file, line, f"{len(row)} fields", " ".join(PER_FRAME_HEADER) + " (space-separated)")
            continue
        vid, _, _, path, raw = (c.strip() for c in row)
        folder = str(Path(path).parent)
        video = videos.setdefault(vid, {"line": line, "folder": folder, "labels": set(), "frames": 0, "bad": False})
        if video["bad"]:
            continue
        if folder != video["folder"]:
            log.report(file, line, f"frame of {quote(vid)} in folder {quote(folder)}, earlier frames in {quote(video['folder'])}",
                       "one frame folder per video")
            video["bad"] = True
            continue
        if raw:
            labels = reader.labels(raw, line)
            if labels is None:
                video["bad"] = True
                continue
            video["labels"].update(labels)
        video["frames"] += 1
    for vid, video in videos.items():
        if video["bad"]:
            continue
        if not video["labels"]:
            log.report(file, video["line"], f"video {quote(vid)} has no labels on any frame", "comma-separated class ids")
            continue
        reader.add(vid, video["folder"], tuple(sorted(video["labels"])), video["line"], {"num_frames": str(video["frames"])})


def load(cfg, split: str) -> DatasetSplit:
    """Load the train or test split of Animal Kingdom action recognition."""
    require_split("animal_kingdom", split, SPLITS)
    opts = cfg.format_options()
    folder = annotation_dir(cfg.annotations)
    table, kind = _clip_table(Path(cfg.annotations), split)
    if cfg.classes and not Path(cfg.classes).name.lower().endswith(".csv"):
        class_names, descriptions = read_class_list(cfg.classes)
    else:
        class_names, descriptions = read_action_classes(Path(cfg.classes) if cfg.classes else folder / ACTION_TABLE)
    log = ProblemLog(cfg.on_error)
    segments = None
    if (folder / SEGMENT_TABLE).is_file():
        segments = read_segments(folder / SEGMENT_TABLE, class_names, log)
    reader = _Reader(table, cfg.root, len(class_names), opts, log)
    if kind == "metadata":
        _read_metadata(reader, split)
    elif kind == "light":
        _read_light(reader)
    else:
        _read_per_frame(reader)
    log.summarize(f"{table} ({split})")
    return DatasetSplit(split, reader.records, class_names, True, descriptions, segments, log.problems)
