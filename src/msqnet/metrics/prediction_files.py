"""Prediction files scored by ``msqnet score``: the Charades submission format and generic CSV.

- Charades submission: one line per video, ``id score_0 ... score_{C-1}``, separated by spaces or tabs.
- Generic CSV, long: header ``id,class,score``, one row per (clip, class) pair.
- Generic CSV, wide: header ``id,<class>,<class>,...``, one row per clip, one column per class.

In CSV files ``class`` is a class name, a class code (``c092``) or an integer id. Scores a file does not
give (a class missing from a long file or a wide header) are ``-inf``: ranked last, never predicted.
Every malformed line raises ``ValueError`` naming the file, the line and what was expected.
"""
from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..utils import atomic_write_text, csv_data_rows, quote, read_csv_rows, read_text

__all__ = [
    "Predictions",
    "class_lookup",
    "read_charades_submission",
    "read_csv_predictions",
    "write_charades_submission",
    "write_wide_csv",
]


@dataclass
class Predictions:
    """Scores read from a predictions file.

    Args:
        path: the file read.
        scores: clip id -> ``(C,)`` float64 scores, ``-inf`` where the file gives none.
        lines: clip id -> line number where the clip first appears.
        num_missing_scores: how many (clip, class) scores the file did not give (filled with ``-inf``).
    """

    path: str
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    num_missing_scores: int = 0


def class_lookup(names: Sequence[str], codes: Sequence[str] | None = None) -> dict[str, int]:
    """Map every way a file may name a class (integer id, code such as ``c092``, name) to its index.

    Names win over codes, codes over integer ids, should a string be both.
    """
    lookup = {str(i): i for i in range(len(names))}
    lookup.update({code: i for i, code in enumerate(codes or ())})
    lookup.update({name: i for i, name in enumerate(names)})
    return lookup


def _parse_score(token: str, where: str, what: str) -> float:
    """A float score from text; NaN or non-numbers raise with the location."""
    try:
        value = float(token)
    except ValueError:
        raise ValueError(f"{where}: {what} {quote(token)} is not a number") from None
    if math.isnan(value):
        raise ValueError(f"{where}: {what} is NaN; scores must be numbers (use -inf for 'no score')")
    return value


def read_charades_submission(path: str | os.PathLike, num_classes: int | None = None) -> Predictions:
    """Read ``id score_0 ... score_{C-1}`` lines; ``num_classes=None`` takes C from the first line.

    Raises:
        ValueError: a line with the wrong number of scores, a non-numeric or NaN score, a duplicated id,
            or a file without any prediction.
    """
    path = Path(path)
    preds = Predictions(path=str(path))
    for lineno, line in enumerate(read_text(path, "predictions file").splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"{path}:{lineno}"
        clip_id, values = tokens[0], tokens[1:]
        if num_classes is None:
            if not values:
                raise ValueError(f"{where}: expected 'id score_0 ... score_C-1', got only {quote(clip_id)}")
            num_classes = len(values)
        if len(values) != num_classes:
            raise ValueError(f"{where}: expected id and {num_classes} scores, got {len(values)} scores")
        if clip_id in preds.lines:
            raise ValueError(f"{where}: id {quote(clip_id)} already given on line {preds.lines[clip_id]}")
        scores = np.array([_parse_score(v, where, f"score {j}") for j, v in enumerate(values)])
        preds.scores[clip_id] = scores
        preds.lines[clip_id] = lineno
    if not preds.scores:
        raise ValueError(f"{path}: no predictions (expected lines 'id score_0 ... score_C-1')")
    return preds


def _resolve_class(token: str, lookup: dict[str, int], where: str) -> int:
    """Class index of a name / code / integer id; unknown ones raise with the location."""
    key = token.strip()
    if key not in lookup:
        raise ValueError(f"{where}: unknown class {quote(key)} (expected a class name, code or id 0..{len(set(lookup.values())) - 1})")
    return lookup[key]


def read_csv_predictions(path: str | os.PathLike, lookup: dict[str, int], num_classes: int) -> Predictions:
    """Read a generic CSV of scores, long (``id,class,score``) or wide (``id,<class>,...``).

    Args:
        path: the CSV file; the first column is named ``id`` or ``path``.
        lookup: class name / code / id -> index, from :func:`class_lookup`.
        num_classes: C.

    Raises:
        ValueError: a bad header, an unknown class, a wrong field count, a non-numeric or NaN score, or a
            duplicated (clip, class) score.
    """
    path = Path(path)
    preds = Predictions(path=str(path))
    given: dict[str, np.ndarray] = {}  # clip id -> (C,) bool, which scores the file gave
    table = read_csv_rows(path, "predictions CSV")
    header = [h.strip() for h in table[0][1]] if table else []
    if not header or header[0].lower() not in ("id", "path"):
        raise ValueError(f"{path}:1: expected a header 'id,class,score' or 'id,<class>,<class>,...', got {header}")
    long_format = [h.lower() for h in header] in (["id", "class", "score"], ["path", "class", "score"])
    if not long_format:
        columns = [_resolve_class(h, lookup, f"{path}:1: column {j + 1}") for j, h in enumerate(header[1:])]
        if len(set(columns)) != len(columns):
            raise ValueError(f"{path}:1: a class appears in two columns of the header")
    for line, where, row in csv_data_rows(path, table):
        clip_id = row[0].strip()
        if clip_id not in preds.scores:
            preds.scores[clip_id] = np.full(num_classes, -np.inf)
            preds.lines[clip_id] = line
            given[clip_id] = np.zeros(num_classes, dtype=bool)
        elif not long_format:
            raise ValueError(f"{where}: id {quote(clip_id)} already given on line {preds.lines[clip_id]}")
        if long_format:
            c = _resolve_class(row[1], lookup, where)
            if given[clip_id][c]:
                raise ValueError(f"{where}: score of id {quote(clip_id)}, class {quote(row[1].strip())} already given")
            preds.scores[clip_id][c] = _parse_score(row[2].strip(), where, "score")
            given[clip_id][c] = True
        else:
            for j, c in enumerate(columns):
                preds.scores[clip_id][c] = _parse_score(row[j + 1].strip(), where, f"column {quote(header[j + 1])}")
                given[clip_id][c] = True
    if not preds.scores:
        raise ValueError(f"{path}: no predictions below the header")
    preds.num_missing_scores = int(sum(num_classes - g.sum() for g in given.values()))
    return preds


def write_charades_submission(path: str | os.PathLike, ids: Iterable[str], scores: np.ndarray) -> None:
    """Write ``(N, C)`` scores as a Charades submission file (``id score_0 ... score_{C-1}``), atomically."""
    ids = list(ids)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != len(ids):
        raise ValueError(f"expected scores of shape ({len(ids)}, C) for {len(ids)} ids, got {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; a submission must hold numbers")
    bad = [i for i in ids if not i or any(ch.isspace() for ch in i)]
    if bad:
        raise ValueError(f"ids must be non-empty and without whitespace, got {quote(bad[0])}")
    lines = [f"{i} " + " ".join(repr(float(v)) for v in row) for i, row in zip(ids, s)]
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_wide_csv(path: str | os.PathLike, ids: Sequence[str], scores: np.ndarray, class_names: Sequence[str]) -> None:
    """Write ``(N, C)`` scores as a wide CSV ``id,<class>,...`` (what ``read_csv_predictions`` reads), atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", *class_names])
    for uid, row in zip(ids, scores):
        writer.writerow([uid, *(repr(float(v)) for v in row)])
    atomic_write_text(path, buf.getvalue())
