"""What every dataset adapter shares: the split container, problem reporting and safe path handling."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

import numpy as np

from ...config_loader import ConfigError, from_dict
from ...utils import quote, read_text
from ..records import ClipRecord

__all__ = [
    "AnnotationError",
    "Problem",
    "DatasetSplit",
    "ProblemLog",
    "fail",
    "resolve_source",
    "read_lines",
    "read_class_list",
    "parse_options",
    "require_split",
    "annotation_dir",
]

logger = logging.getLogger("msqnet.data")

T = TypeVar("T")

# With on_error='skip', log this many problems one by one; the rest only count in the summary.
_LOG_FIRST = 20


class AnnotationError(ValueError):
    """An annotation file is wrong; the message is ``<file>:<line>: <what was wrong>; expected <what>``.

    ``problem`` holds the same as a structured ``Problem`` (file, line, message).
    """

    def __init__(self, problem: "Problem") -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True)
class Problem:
    """One bad annotation line (or file) found while loading with ``on_error='skip'``."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass
class DatasetSplit:
    """The clips of one split of a dataset, with its class list.

    Args:
        name: split name as asked for (``train``, ``test``, ``val``, a generic split file's name).
        records: the clips, in annotation-file order.
        class_names: class names; a label id is an index into this list.
        multi_label: several labels per clip (sigmoid / BCE) rather than exactly one (softmax / CE).
        class_descriptions: one free-text description per class where the benchmark has them.
        segments: named groups of class ids, e.g. Animal Kingdom's ``head`` / ``middle`` / ``tail``.
        problems: bad lines skipped under ``on_error='skip'`` (empty with ``'raise'``).
        multi_label_inferred: ``multi_label`` was read off the clips (generic ``multi_label: null``:
            single-label because every clip has exactly one label), not set by the format or the config.
    """

    name: str
    records: list[ClipRecord]
    class_names: list[str]
    multi_label: bool
    class_descriptions: list[str] | None = None
    segments: dict[str, list[int]] | None = None
    problems: list[Problem] = field(default_factory=list)
    multi_label_inferred: bool = False

    @property
    def num_classes(self) -> int:
        """Number of classes (length of ``class_names``)."""
        return len(self.class_names)

    def as_label_kind(self, multi_label: bool) -> DatasetSplit:
        """This split read as multi-label or single-label data (an inferred kind follows the training split's).

        Raises ValueError naming the first clip without exactly one label when ``multi_label`` is false.
        """
        if multi_label == self.multi_label:
            return self
        if not multi_label:
            bad = next((r for r in self.records if len(r.labels) != 1), None)
            if bad is not None:
                raise ValueError(f"split {quote(self.name)}: clip {quote(bad.uid)} has {len(bad.labels)} labels, but the training "
                                 "split is single-label (every clip exactly one label); set data.options.multi_label=true")
        return replace(self, multi_label=multi_label, multi_label_inferred=False)

    def hold_out(self, fraction: float, *, seed: int, name: str,
                 group_by: str | None = None) -> tuple[DatasetSplit, DatasetSplit]:
        """This split without a seeded random ``fraction`` of its clips, and those clips as a split ``name``
        (both in annotation order). With ``group_by`` (a metadata column, e.g. the recording a clip was cut
        from) whole groups are held out, in seeded random order until ``fraction`` of the clips is reached,
        so that no group is on both sides."""
        records = self.records
        count = round(len(records) * fraction)
        if not 1 <= count < len(records):
            raise ValueError(f"{fraction} of {len(records)} {self.name} clips leaves no clip to "
                             f"{'hold out' if count < 1 else 'keep'}")
        rng = np.random.default_rng([seed, len(records)])
        if group_by is None:
            held = set(rng.permutation(len(records))[:count].tolist())
        else:
            groups: dict[str, list[int]] = {}
            for i, r in enumerate(records):
                groups.setdefault(r.meta[group_by], []).append(i)
            if len(groups) < 2:
                raise ValueError(f"{len(records)} {self.name} clips are all of one {quote(group_by)}: nothing to hold out "
                                 "by group")
            held = set()
            for g in rng.permutation(sorted(groups)).tolist():
                if len(held) >= count:
                    break
                if len(held) + len(groups[g]) < len(records):
                    held.update(groups[g])
        return (replace(self, records=[r for i, r in enumerate(records) if i not in held]),
                replace(self, name=name, records=[records[i] for i in sorted(held)]))

    def group_key(self, candidates: Iterable[str]) -> str | None:
        """The first of ``candidates`` that every clip has as a non-empty metadata column, or ``None``."""
        return next((k for k in candidates if self.records and all(r.meta.get(k) for r in self.records)), None)


class ProblemLog:
    """Raise on the first problem (``on_error='raise'``) or collect, log and count them (``'skip'``)."""

    def __init__(self, on_error: str) -> None:
        self.on_error = on_error
        self.problems: list[Problem] = []

    def report(self, file: str | os.PathLike, line: int | None, what: str, expected: str | None = None) -> None:
        """Record one problem; raises AnnotationError unless problems are being skipped."""
        message = f"{what}; expected {expected}" if expected else what
        problem = Problem(str(file), line, message)
        if self.on_error == "raise":
            raise AnnotationError(problem)
        self.problems.append(problem)
        if len(self.problems) <= _LOG_FIRST:
            logger.warning("skipped: %s", problem)
        elif len(self.problems) == _LOG_FIRST + 1:
            logger.warning("more problems skipped; only their count is logged from now on")

    def summarize(self, what: str) -> None:
        """Log how many problems were skipped while loading ``what``."""
        if self.problems:
            logger.warning("%s: skipped %d bad annotation entries (on_error=skip)", what, len(self.problems))


def fail(file: str | os.PathLike, line: int | None, what: str, expected: str | None = None) -> AnnotationError:
    """An AnnotationError for a problem that makes the whole file unusable (raised whatever on_error says)."""
    return AnnotationError(Problem(str(file), line, f"{what}; expected {expected}" if expected else what))


def resolve_source(
    root: str, rel: str, log: ProblemLog, file: str | os.PathLike, line: int | None
) -> str | None:
    """Absolute path of ``rel`` under ``root``; reports (and returns None for) a path escaping the root.

    The check is lexical (``..`` and absolute paths outside the root), so datasets whose root holds
    symlinks to other disks still work.
    """
    rel = rel.strip()
    if not rel:
        log.report(file, line, "empty video path", "a path relative to the dataset root")
        return None
    base = os.path.abspath(root)
    path = os.path.normpath(rel if os.path.isabs(rel) else os.path.join(base, rel))
    if not path.startswith(base.rstrip(os.sep) + os.sep):
        log.report(file, line, f"path {quote(rel)} escapes the dataset root {base}", "a path inside the root")
        return None
    return path


def read_lines(path: str | os.PathLike, what: str = "annotation file") -> list[str]:
    """Lines of a text file (newline characters stripped); errors for a missing or empty file."""
    text = read_text(path, what)
    if not text.strip():
        raise fail(path, None, f"{what} is empty", "at least one entry")
    return text.splitlines()


def read_class_list(path: str | os.PathLike) -> tuple[list[str], list[str] | None]:
    """Class names (and descriptions) from ``classes.txt`` (one per line) or ``classes.json``.

    ``classes.json`` is a list of ``{"name": ..., "description": ...}`` objects or of plain names.
    The order is the id order. Blank lines in the middle, duplicate names and empty files are errors.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        return _read_class_json(path)
    lines = read_lines(path, "class list")
    while lines and not lines[-1].strip():
        lines.pop()
    names: list[str] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(lines, 1):
        name = raw.strip()
        if not name:
            raise fail(path, n, "blank line inside the class list (line order is the class id)", "one class name per line")
        if name in seen:
            raise fail(path, n, f"duplicate class name {quote(name)} (first on line {seen[name]})", "unique class names")
        seen[name] = n
        names.append(name)
    return names, None


def _read_class_json(path: Path) -> tuple[list[str], list[str] | None]:
    text = read_text(path, "class list")
    if not text.strip():
        raise fail(path, None, "class list is empty", "a JSON list of classes")
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise fail(path, e.lineno, f"not valid JSON ({e.msg})", 'a list of {"name": ..., "description": ...}') from None
    if not isinstance(items, list) or not items:
        raise fail(path, None, "top level is not a non-empty list", 'a list of {"name": ..., "description": ...}')
    names: list[str] = []
    descriptions: list[str] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            name, desc = item, ""
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            unknown = set(item) - {"name", "description"}
            if unknown:
                raise fail(path, None, f"class #{i} has unknown keys {sorted(unknown)}", "only 'name' and 'description'")
            name, desc = item["name"], item.get("description") or ""
            if not isinstance(desc, str):
                raise fail(path, None, f"class #{i} description is {type(desc).__name__}", "a string")
        else:
            raise fail(path, None, f"class #{i} is {quote(item)}", 'a name or {"name": ..., "description": ...}')
        name = name.strip()
        if not name:
            raise fail(path, None, f"class #{i} has an empty name", "a non-empty name")
        if name in names:
            raise fail(path, None, f"class #{i} duplicates the name {quote(name)}", "unique class names")
        names.append(name)
        descriptions.append(desc)
    return names, (descriptions if any(descriptions) else None)


def parse_options(cls: type[T], options: Mapping[str, Any], fmt: str) -> T:
    """Validate ``DataConfig.options`` against an adapter's options dataclass (unknown keys rejected)."""
    try:
        return from_dict(cls, options, where="options")
    except ConfigError as e:
        raise ConfigError(f"format {quote(fmt)}: {e}") from None


def require_split(fmt: str, split: str, known: Iterable[str]) -> None:
    """Reject a split name the format does not have."""
    known = list(known)
    if split not in known:
        raise ConfigError(f"format {quote(fmt)} has no split {quote(split)}; expected one of {known}")


def annotation_dir(annotations: str) -> Path:
    """The folder of the annotation files: ``annotations`` itself or, for a file, its parent."""
    path = Path(annotations)
    if not path.exists():
        raise FileNotFoundError(f"{path}: annotation file or folder not found")
    return path if path.is_dir() else path.parent
