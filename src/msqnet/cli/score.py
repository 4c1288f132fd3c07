"""``msqnet score``: score a predictions file against ground-truth annotations, without a model.

Ground truth (detected from the CSV header):
- Charades CSV (``id,...,actions,...``): ``actions`` = ``c092 11.90 21.20;c147 0.00 12.60`` or empty.
- Generic CSV (``id`` or ``path``, ``labels``): ``labels`` = ``;``-separated class names or ids.

Predictions (``--format``): a Charades submission (``id score_0 ... score_{C-1}``) or a generic CSV, long
(``id,class,score``) or wide (``id,<class>,...``); see :mod:`msqnet.metrics.prediction_files`.

Rows of the score matrix are the ground-truth rows in file order. A ground-truth id the predictions
lack is scored ``-inf`` for every class (as ``Charades_v1_classify.m`` does) and reported; an id the
ground truth lacks, or a repeated id, is an error naming the line.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..metrics import compute_metrics, metric_descriptions, parse_metric_names
from ..metrics.prediction_files import Predictions, class_lookup, read_charades_submission, read_csv_predictions
from ..utils import csv_data_rows, json_text, quote, read_csv_rows, read_json, read_text
from .arguments import finite_float, positive_int

_CHARADES_CLASS_LINE = re.compile(r"(c\d+)\s+(\S.*)")
_CHARADES_ACTION = re.compile(r"c(\d+)")


@dataclass
class GroundTruth:
    """Annotations as a target matrix.

    Args:
        path: the file read.
        kind: ``"charades"`` or ``"generic"``.
        ids: clip ids in file order.
        lines: line number of each id.
        targets: ``(N, C)`` bool.
    """

    path: str
    kind: str
    ids: list[str]
    lines: list[int]
    targets: np.ndarray


def read_class_list(path: Path) -> tuple[list[str], list[str] | None]:
    """Class names (and codes, for ``Charades_v1_classes.txt``) from ``classes.txt`` or ``classes.json``.

    ``classes.json`` is a list of ``{"name": ..., "description": ...}`` objects or of strings;
    ``classes.txt`` has one name per line, or ``cNNN Name`` lines in id order (Charades).
    """
    if path.suffix.lower() == ".json":
        items = read_json(path, "class list", "a JSON class list")
        if not isinstance(items, list):
            raise ValueError(f"{path}: expected a JSON list of classes, got {type(items).__name__}")
        names = []
        for i, item in enumerate(items):
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"{path}: entry {i}: expected a string or an object with a 'name' string, got {quote(item)}")
            names.append(name.strip())
        codes = None
    else:
        text = read_text(path, "class list")
        lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        matches = [_CHARADES_CLASS_LINE.fullmatch(text) for _, text in lines]
        if lines and all(matches):
            codes = [m.group(1) for m in matches]
            names = [m.group(2).strip() for m in matches]
            for (lineno, _), i, code in zip(lines, range(len(codes)), codes):
                if int(code[1:]) != i:
                    raise ValueError(f"{path}:{lineno}: expected class c{i:03d} (ids in order from c000), got {code}")
        else:
            names, codes = [text for _, text in lines], None
    if not names:
        raise ValueError(f"{path}: no classes")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{path}: class {quote(name)} listed twice (entries {seen[name]} and {i})")
        seen[name] = i
    return names, codes


def _column(path: Path, header: list[str], accepted: tuple[str, ...]) -> int:
    """Position of the first header column named one of ``accepted``; a clear error when none is."""
    for name in accepted:
        if name in header:
            return header.index(name)
    raise ValueError(f"{path}:1: expected a column {' or '.join(map(repr, accepted))} in the header, got {header}")


def read_ground_truth(path: Path, lookup: dict[str, int], num_classes: int) -> GroundTruth:
    """Read Charades or generic annotations into an ``(N, C)`` target matrix; errors name file and line.

    The kind is read from the header: an ``actions`` column means Charades, a ``labels`` column generic.
    """
    ids, lines, rows = [], [], []
    first_line: dict[str, int] = {}
    table = read_csv_rows(path, "ground-truth CSV")
    header = [h.strip().lower() for h in table[0][1]] if table else []
    if "actions" in header:
        kind, id_col, label_col = "charades", _column(path, header, ("id",)), header.index("actions")
    elif "labels" in header:
        kind, id_col, label_col = "generic", _column(path, header, ("id", "path")), header.index("labels")
    else:
        raise ValueError(
            f"{path}:1: expected a Charades header (id,...,actions,...) or a generic one (id,labels), got {header}"
        )
    for line, where, row in csv_data_rows(path, table):
        clip_id = row[id_col].strip()
        if not clip_id:
            raise ValueError(f"{where}: empty id")
        if clip_id in first_line:
            raise ValueError(f"{where}: id {quote(clip_id)} already annotated on line {first_line[clip_id]}")
        first_line[clip_id] = line
        field = row[label_col].strip()
        labels = (
            _charades_actions(field, num_classes, where) if kind == "charades"
            else _generic_labels(field, lookup, num_classes, where)
        )
        target = np.zeros(num_classes, dtype=bool)
        target[labels] = True
        ids.append(clip_id)
        lines.append(line)
        rows.append(target)
    if not rows:
        raise ValueError(f"{path}: no annotated rows below the header")
    return GroundTruth(path=str(path), kind=kind, ids=ids, lines=lines, targets=np.stack(rows))


def _charades_actions(field: str, num_classes: int, where: str) -> list[int]:
    """Class ids of a Charades ``actions`` field ``c092 11.90 21.20;c147 0.00 12.60`` (may be empty)."""
    labels = []
    for action in filter(None, (a.strip() for a in field.split(";"))):
        parts = action.split()
        match = _CHARADES_ACTION.fullmatch(parts[0])
        if len(parts) != 3 or match is None:
            raise ValueError(f"{where}: expected actions like 'c092 11.90 21.20', got {quote(action)}")
        c = int(match.group(1))
        if c >= num_classes:
            raise ValueError(f"{where}: action class {parts[0]} is out of range for {num_classes} classes")
        labels.append(c)
    return labels


def _generic_labels(field: str, lookup: dict[str, int], num_classes: int, where: str) -> list[int]:
    """Class ids of a ``;``-separated ``labels`` field of names or ids (may be empty)."""
    labels = []
    for token in filter(None, (t.strip() for t in field.split(";"))):
        if token not in lookup:
            raise ValueError(f"{where}: unknown label {quote(token)} (expected a class name or an id 0..{num_classes - 1})")
        labels.append(lookup[token])
    return labels


def score_matrix(preds: Predictions, gt: GroundTruth) -> tuple[np.ndarray, list[str]]:
    """``(N, C)`` scores in ground-truth row order, ``-inf`` for ids without predictions; also those ids."""
    known = set(gt.ids)
    extra = [i for i in preds.scores if i not in known]
    if extra:
        raise ValueError(
            f"{preds.path}:{preds.lines[extra[0]]}: id {quote(extra[0])} is not in the ground truth {gt.path} "
            f"({len(extra)} such id(s))"
        )
    scores = np.full(gt.targets.shape, -np.inf)
    missing = []
    for row, clip_id in enumerate(gt.ids):
        if clip_id in preds.scores:
            scores[row] = preds.scores[clip_id]
        else:
            missing.append(clip_id)
    return scores, missing


def _sniff_format(path: Path) -> str:
    """``"csv"`` when the first non-empty line has a comma, else ``"charades"``."""
    for line in read_text(path, "predictions file").splitlines():
        if line.strip():
            return "csv" if "," in line else "charades"
    raise ValueError(f"{path}: empty predictions file")


def _read_segments(path: Path, lookup: dict[str, int]) -> dict[str, list[int]]:
    """``{segment: [class ids or names]}`` from JSON, resolved to class ids."""
    raw = read_json(path, "segments file", "a JSON segments file")
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object {{segment: [classes]}}, got {type(raw).__name__}")
    segments = {}
    for name, members in raw.items():
        if not isinstance(members, list):
            raise ValueError(f"{path}: segment {quote(name)}: expected a list of classes")
        ids = []
        for m in members:
            if str(m) not in lookup:
                raise ValueError(f"{path}: segment {quote(name)}: unknown class {quote(m)}")
            ids.append(lookup[str(m)])
        segments[name] = ids
    return segments


def run_score(args: argparse.Namespace) -> int:
    """Read predictions and ground truth, compute the metrics, print a table or JSON."""
    fmt = _sniff_format(args.predictions) if args.format == "auto" else args.format
    names, codes = read_class_list(args.classes) if args.classes else (None, None)
    if fmt == "charades":
        preds = read_charades_submission(args.predictions, len(names) if names else None)
        num_classes = len(next(iter(preds.scores.values())))
        if names is None:
            names, codes = [f"c{i:03d}" for i in range(num_classes)], None
    else:
        if names is None:
            raise ValueError("--classes FILE is required with CSV predictions (it names the classes)")
        num_classes = len(names)
        preds = read_csv_predictions(args.predictions, class_lookup(names, codes), num_classes)
    lookup = class_lookup(names, codes)
    gt = read_ground_truth(args.ground_truth, lookup, num_classes)
    scores, missing = score_matrix(preds, gt)
    if missing:
        print(
            f"msqnet score: warning: {len(missing)} of {len(gt.ids)} ground-truth ids have no predictions "
            f"(first: {quote(missing[0])}); scored -inf for every class",
            file=sys.stderr,
        )

    metric_names = parse_metric_names(args.metric or ["charades_map" if gt.kind == "charades" else "map"])
    segments = _read_segments(args.segments, lookup) if args.segments else None
    metrics = compute_metrics(
        metric_names, scores, gt.targets, threshold=args.threshold, batch_size=args.batch_size, segments=segments
    )
    info = {
        "predictions": str(args.predictions),
        "format": fmt,
        "ground_truth": str(args.ground_truth),
        "ground_truth_format": gt.kind,
        "rows": len(gt.ids),
        "rows_without_labels": int((~gt.targets.any(axis=1)).sum()),
        "rows_missing": len(missing),
        "missing_scores": preds.num_missing_scores,
        "classes": num_classes,
        "classes_with_positives": int(gt.targets.any(axis=0).sum()),
    }
    if args.json:
        print(json_text({"metrics": metrics, **info}, indent=2))
    else:
        print(_format_table(metrics, info))
    return 0


def _format_table(metrics: dict[str, float], info: dict) -> str:
    """Readable summary: what was scored, then one metric per line as a fraction and a percentage."""
    lines = [
        f"predictions   {info['predictions']} ({info['format']})",
        f"ground truth  {info['ground_truth']} ({info['ground_truth_format']}): {info['rows']} rows, "
        f"{info['rows_without_labels']} without labels, {info['rows_missing']} missing from the predictions",
        f"classes       {info['classes']}, {info['classes_with_positives']} with positives",
    ]
    if info["missing_scores"]:
        lines.append(f"scores        {info['missing_scores']} (clip, class) scores not given, counted as -inf")
    width = max(len("metric"), *(len(k) for k in metrics))
    lines += ["", f"{'metric':<{width}}  {'value':>8}  {'%':>6}", f"{'-' * width}  {'-' * 8}  {'-' * 6}"]
    lines += [f"{k:<{width}}  {v:8.4f}  {100 * v:6.2f}" for k, v in metrics.items()]
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``msqnet score``."""
    p = subparsers.add_parser(
        "score",
        help="score a predictions file against ground truth (no model needed)",
        description="Score a predictions file against ground-truth annotations, without a model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="metrics:\n" + "\n".join(f"  {k:<19} {v}" for k, v in metric_descriptions().items()),
    )
    p.add_argument("predictions", type=Path, help="Charades submission (id score_0 ... score_C-1) or CSV of scores")
    p.add_argument("--ground-truth", "-g", type=Path, required=True, help="Charades CSV or generic CSV (id,labels)")
    p.add_argument(
        "--metric", "-m", action="append",
        help="metric name(s), repeatable or comma-separated (default: charades_map for Charades ground truth, else map)",
    )
    p.add_argument("--format", choices=("auto", "charades", "csv"), default="auto",
                   help="predictions format (default: csv if the first line has a comma)")
    p.add_argument("--classes", type=Path, help="classes.txt (one name per line, or Charades 'cNNN Name') or classes.json")
    p.add_argument("--threshold", type=finite_float, default=0.5, help="decision threshold of 'f1' (score > threshold)")
    p.add_argument("--batch-size", type=positive_int, help="the reference's test batch size, for 'reference_micro_ap'")
    p.add_argument("--segments", type=Path, help="JSON {segment: [classes]} for 'ak_segments'")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    p.set_defaults(func=run_score)
