"""Evaluation report folder: ``metrics.json``, a Markdown ``summary.md`` and PNG plots.

:func:`write_report` is called once at the end of an evaluation with the whole split's scores. It
writes, into one folder that replaces any previous report wholesale:

- ``metrics.json``: headline metrics, chance levels, per-class AP with class names and positives,
  per-segment mAP and free-form ``extra`` (schema below, versioned by ``schema_version``);
- ``summary.md``: the same, readable: headline metrics beside chance, segment mAP, best/worst classes;
- ``per_class_ap.png``: per-class AP sorted, one horizontal bar per class;
- ``pr_curves.png``: precision-recall curves of the best and worst classes;
- ``training_curves.png``: training loss and eval metric over training (only when a history is given).

Plots use matplotlib's object API with the Agg canvas (no pyplot, no display, no global backend change).
:func:`print_table` formats the per-split table the CLI prints.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..metrics import per_class_average_precision
from ..utils import FolderMark, atomic_folder, check_replaceable, quote

__all__ = [
    "REPORT_KIND",
    "SCHEMA_VERSION",
    "write_report",
    "print_table",
    "precision_recall_curve",
]

REPORT_KIND = "msqnet-evaluation-report"
SCHEMA_VERSION = 1
METRICS_NAME = "metrics.json"
# What write_report replaces: only an empty folder or an earlier report, never a user's folder.
REPORT_MARK = FolderMark(METRICS_NAME, "kind", REPORT_KIND, "an evaluation report")
SUMMARY_NAME = "summary.md"
TRAINING_CURVES_NAME = "training_curves.png"
PER_CLASS_AP_NAME = "per_class_ap.png"
PR_CURVES_NAME = "pr_curves.png"

# Eval-history metric drawn in the training curves: the first of these the history has.
_CURVE_METRIC_PREFERENCE = ("map", "charades_map", "top1", "f1", "example_accuracy")
_BOOKKEEPING_KEYS = {"epoch", "step", "split", "time", "lr", "loss", "elapsed", "clips", "num_clips"}
_NUM_LISTED = 5  # best / worst classes in the summary
_MAX_LABELLED_BARS = 200  # above this, only the best and worst bars carry a class name
_DPI = 110


def precision_recall_curve(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of one class at every distinct score threshold, highest threshold first.

    The points are scikit-learn's ``precision_recall_curve`` in increasing-recall order, starting at
    ``(recall 0, precision 1)``; tied scores form one threshold. The step-wise area
    ``sum (r[k] - r[k-1]) * p[k]`` equals :func:`msqnet.metrics.binary_average_precision`.

    Args:
        scores: ``(N,)`` scores, no NaN.
        targets: ``(N,)`` in {0, 1} with at least one positive.

    Returns:
        ``(precision, recall)``, each ``(K + 1,)`` for ``K`` distinct scores.
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(targets).astype(bool)
    if s.ndim != 1 or s.shape != t.shape:
        raise ValueError(f"precision_recall_curve: expected (N,) scores and targets, got {s.shape} and {t.shape}")
    num_pos = int(t.sum())
    if num_pos == 0:
        raise ValueError("precision_recall_curve: the class has no positive; recall is undefined")
    if np.isnan(s).any():
        raise ValueError("precision_recall_curve: scores contain NaN")
    order = np.argsort(-s, kind="stable")
    sorted_scores = s[order]
    tp = np.cumsum(t[order])
    # Read the curve at the last row of each run of equal scores: a tie is one threshold.
    run_ends = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    precision = tp[run_ends] / (run_ends + 1)
    recall = tp[run_ends] / num_pos
    return np.concatenate([[1.0], precision]), np.concatenate([[0.0], recall])


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Format ``rows`` as an aligned plain-text table of ``columns`` (floats to 4 places, missing as ``-``)."""
    if not columns:
        raise ValueError("print_table: need at least one column")
    cells = [[_format_cell(row.get(col)) for col in columns] for row in rows]
    numeric = [all(_is_number(row.get(col)) or row.get(col) is None for row in rows) and bool(rows) for col in columns]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return " | ".join(parts).rstrip()

    out = [line(list(columns)), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def write_report(
    out_dir: str | os.PathLike,
    *,
    metrics: Mapping[str, float],
    scores: np.ndarray,
    targets: np.ndarray,
    class_names: Sequence[str],
    history: Sequence[Mapping[str, Any]] | None = None,
    split_name: str = "test",
    segments: Mapping[str, Sequence[int]] | None = None,
    chance: Mapping[str, float] | None = None,
    extra: Mapping[str, Any] | None = None,
    top_k_pr: int = 3,
    per_class_ap: np.ndarray | None = None,
) -> Path:
    """Write an evaluation report folder at ``out_dir``, replacing an earlier report there wholesale.

    The folder is built under a temporary name beside ``out_dir`` and renamed into place, so a crash
    never leaves a half-written report, and no file of an earlier report survives. An existing
    ``out_dir`` that is not empty and not an msqnet report is never touched (``ValueError``).

    Args:
        out_dir: the report folder.
        metrics: headline metrics of the split, e.g. ``{"map": 0.41, "top1": 0.6}``.
        scores: ``(N, C)`` scores (logits or probabilities; only their order matters).
        targets: ``(N, C)`` multi-hot in {0, 1}, or ``(N,)`` integer class ids (single-label).
        class_names: ``C`` names, in class-id order.
        history: training log records: ``{"epoch", "step", "loss"}`` for training steps and
            ``{"epoch", "split", <metric>: value}`` for evaluations; no training-curves plot if empty.
        split_name: the evaluated split, used in titles.
        segments: class segments (e.g. Animal Kingdom head / middle / tail): name -> class ids.
        chance: chance level of each metric (same keys as ``metrics``), shown side by side.
        extra: JSON-serialisable details to keep in ``metrics.json`` (checkpoint, config, timing...).
        top_k_pr: how many of the best and of the worst classes get a precision-recall curve.
        per_class_ap: ``(C,)`` AP of every class when the evaluation computed it already (NaN for a
            class without positives); ``None`` computes it here.

    Returns:
        ``out_dir`` as a ``Path``.

    Raises:
        ValueError: inconsistent shapes, a wrong number of class names, NaN scores, non-binary or
            out-of-range targets, bad segments, non-numeric metrics, or a non-report ``out_dir``.
    """
    out_dir = Path(out_dir)
    s, t = _check_inputs(scores, targets, class_names)
    metrics = _check_numbers(metrics, "metrics")
    chance = _check_numbers(chance or {}, "chance")
    if top_k_pr < 1:
        raise ValueError(f"top_k_pr must be >= 1, got {top_k_pr}")
    records = _check_history(history)
    segment_ids = _check_segments(segments, s.shape[1])
    check_replaceable(out_dir, REPORT_MARK)  # before the work: refuse a user's folder up front

    num_pos = t.sum(axis=0).astype(np.int64)  # (C,)
    if per_class_ap is None:
        per_class_ap = per_class_average_precision(s, t)
    elif np.shape(per_class_ap) != (s.shape[1],):
        raise ValueError(f"per_class_ap: expected shape ({s.shape[1]},), one AP per class, got {np.shape(per_class_ap)}")
    report = _report_dict(
        metrics=metrics, chance=chance, per_class_ap=per_class_ap, num_pos=num_pos, class_names=class_names,
        num_clips=s.shape[0], single_label=np.asarray(targets).ndim == 1, split_name=split_name,
        segment_ids=segment_ids, extra=extra,
    )

    with atomic_folder(out_dir, mark=REPORT_MARK) as staging:
        notes = report["notes"]
        plots = report["plots"]
        if _plot_training_curves(staging / TRAINING_CURVES_NAME, records, chance, split_name):
            plots["training_curves"] = TRAINING_CURVES_NAME
        else:
            notes.append("training curves not plotted: no training history was given"
                         if not records else "training curves not plotted: the history has no loss or eval records")
        ranked = _ranked_classes(per_class_ap)
        if ranked.size:
            _plot_per_class_ap(staging / PER_CLASS_AP_NAME, per_class_ap, num_pos, class_names, ranked,
                               metrics.get("map"), chance.get("map"), segment_ids, split_name)
            _plot_pr_curves(staging / PR_CURVES_NAME, s, t, per_class_ap, class_names, ranked, top_k_pr, split_name)
            plots["per_class_ap"] = PER_CLASS_AP_NAME
            plots["pr_curves"] = PR_CURVES_NAME
        else:
            notes.append("per-class AP and precision-recall plots not drawn: no class has a positive")
        text = json.dumps(report, indent=2, allow_nan=False, default=_json_default)
        (staging / METRICS_NAME).write_text(text + "\n", encoding="utf-8")
        (staging / SUMMARY_NAME).write_text(_summary_markdown(report), encoding="utf-8")
    return out_dir


# ----------------------------------------------------------------------------------------------------
# input checks


def _check_inputs(scores: np.ndarray, targets: np.ndarray, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Validate the score matrix, targets and class names; return ``(float64 (N, C), bool (N, C))``."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"scores: expected a non-empty (N clips, C classes) array, got shape {s.shape}")
    n, c = s.shape
    if np.isnan(s).any():
        rows = np.unique(np.nonzero(np.isnan(s))[0])
        raise ValueError(f"scores contain NaN in {rows.size} row(s), first row {rows[0]}; the report needs real scores")
    if isinstance(class_names, str) or len(class_names) != c:
        got = "a single string" if isinstance(class_names, str) else f"{len(class_names)} names"
        raise ValueError(f"class_names: expected {c} names (one per score column), got {got}")
    t = np.asarray(targets)
    if t.ndim == 1:
        if t.shape[0] != n:
            raise ValueError(f"shape mismatch: scores have {n} rows but targets (class ids) have {t.shape[0]}")
        if not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"single-label targets must be integer class ids, got dtype {t.dtype}")
        bad = np.flatnonzero((t < 0) | (t >= c))
        if bad.size:
            raise ValueError(f"targets: class id {t[bad[0]]} at row {bad[0]} is out of range for {c} classes")
        one_hot = np.zeros((n, c), dtype=bool)
        one_hot[np.arange(n), t] = True
        return s, one_hot
    if t.shape != s.shape:
        raise ValueError(
            f"shape mismatch: scores {s.shape} vs targets {t.shape}; targets must be (N, C) multi-hot or (N,) class ids"
        )
    if t.dtype != np.bool_:
        bad_mask = (t != 0) & (t != 1)
        if bad_mask.any():
            r, col = (int(i[0]) for i in np.nonzero(bad_mask))
            raise ValueError(f"multi-hot targets must be 0 or 1, found {quote(t[r, col].item())} at row {r}, class {col}")
    return s, t.astype(bool)


def _is_number(value: Any) -> bool:
    """True for real numbers (Python or numpy), False for bools and everything else."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_numbers(values: Mapping[str, Any], what: str) -> dict[str, float | None]:
    """Return ``values`` as ``{str: float or None}``; NaN becomes None (JSON has no NaN)."""
    out: dict[str, float | None] = {}
    for key, value in values.items():
        if value is not None and not _is_number(value):
            raise ValueError(f"{what}[{quote(key)}]: expected a number, got {type(value).__name__} {quote(value)}")
        out[str(key)] = None if value is None or math.isnan(float(value)) else float(value)
    return out


def _check_history(history: Sequence[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    """Return the history records as a list; every record must be a mapping."""
    if not history:
        return []
    records = list(history)
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValueError(f"history[{i}]: expected a dict record, got {type(record).__name__}")
    return records


def _check_segments(segments: Mapping[str, Sequence[int]] | None, num_classes: int) -> dict[str, list[int]]:
    """Validate segment class ids against ``num_classes``."""
    out: dict[str, list[int]] = {}
    for name, ids in (segments or {}).items():
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < num_classes]
        if bad:
            raise ValueError(f"segment {quote(name)}: class id {bad[0]} out of range for {num_classes} classes")
        out[str(name)] = ids
    return out


# ----------------------------------------------------------------------------------------------------
# report content


def _ranked_classes(per_class_ap: np.ndarray) -> np.ndarray:
    """Ids of the classes with positives, best AP first (ties keep class order)."""
    scored = np.flatnonzero(~np.isnan(per_class_ap))
    return scored[np.argsort(-per_class_ap[scored], kind="stable")]


def _nan_to_none(value: float) -> float | None:
    """JSON-safe float: NaN becomes None."""
    return None if math.isnan(value) else float(value)


def _report_dict(
    *, metrics: dict[str, float | None], chance: dict[str, float | None], per_class_ap: np.ndarray,
    num_pos: np.ndarray, class_names: Sequence[str], num_clips: int, single_label: bool, split_name: str,
    segment_ids: dict[str, list[int]], extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The ``metrics.json`` content (every key always present, so readers can rely on the schema)."""
    segments = {}
    for name, ids in segment_ids.items():
        aps = per_class_ap[ids] if ids else np.array([])
        aps = aps[~np.isnan(aps)]
        segments[name] = {
            "map": float(aps.mean()) if aps.size else None,
            "num_classes": len(ids),
            "num_classes_with_positives": int(aps.size),
            "classes": ids,
        }
    try:
        extra_json = json.loads(json.dumps(dict(extra or {}), allow_nan=False, default=_json_default))
    except (TypeError, ValueError) as e:
        raise ValueError(f"extra: not JSON-serialisable ({e})") from None
    return {
        "kind": REPORT_KIND,
        "schema_version": SCHEMA_VERSION,
        "split": split_name,
        "num_clips": int(num_clips),
        "num_classes": len(class_names),
        "num_classes_with_positives": int(np.count_nonzero(num_pos)),
        "target_type": "single-label" if single_label else "multi-label",
        "metrics": metrics,
        "chance": chance,
        "segments": segments,
        "per_class": [
            {"index": c, "name": str(name), "ap": _nan_to_none(per_class_ap[c]), "num_positives": int(num_pos[c])}
            for c, name in enumerate(class_names)
        ],
        "plots": {"training_curves": None, "per_class_ap": None, "pr_curves": None},
        "notes": [],
        "extra": extra_json,
    }


def _json_default(obj: Any) -> Any:
    """Serialise numpy values and paths inside ``extra``."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} {quote(obj)} is not JSON-serialisable")


def _format_cell(value: Any) -> str:
    """Table cell text: floats to 4 places, missing or NaN as ``-``."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    return str(value)


def _md(text: str) -> str:
    """Escape a class name for a Markdown table cell."""
    return str(text).strip().replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _summary_markdown(report: dict[str, Any]) -> str:
    """The readable ``summary.md`` of a report dict."""
    lines = [f"# Evaluation report: {report['split']}", ""]
    lines.append(
        f"{report['num_clips']} clips, {report['num_classes']} classes "
        f"({report['num_classes_with_positives']} with at least one positive), {report['target_type']} targets."
    )
    lines += ["", "## Metrics", "", "| metric | value | chance |", "|---|---:|---:|"]
    keys = list(report["metrics"]) + [k for k in report["chance"] if k not in report["metrics"]]
    for key in keys:
        lines.append(f"| {key} | {_format_cell(report['metrics'].get(key))} | {_format_cell(report['chance'].get(key))} |")
    if not keys:
        lines.append("| (none given) | - | - |")

    if report["segments"]:
        lines += ["", "## mAP by class segment", "", "| segment | classes | with positives | mAP |", "|---|---:|---:|---:|"]
        for name, seg in report["segments"].items():
            lines.append(f"| {name} | {seg['num_classes']} | {seg['num_classes_with_positives']} | {_format_cell(seg['map'])} |")

    per_class = report["per_class"]
    scored = sorted((p for p in per_class if p["ap"] is not None), key=lambda p: (-p["ap"], p["index"]))
    for title, chosen in (("Best", scored[:_NUM_LISTED]), ("Worst", scored[::-1][:_NUM_LISTED])):
        lines += ["", f"## {title} {len(chosen)} classes by AP", "", "| class | AP | positives |", "|---|---:|---:|"]
        lines += [f"| {_md(p['name'])} | {p['ap']:.4f} | {p['num_positives']} |" for p in chosen]
    missing = [p["name"] for p in per_class if p["ap"] is None]
    if missing:
        shown = ", ".join(_md(n) for n in missing[:20]) + (f", ... ({len(missing) - 20} more)" if len(missing) > 20 else "")
        lines += ["", f"{len(missing)} class(es) have no positive in this split and are left out of mAP: {shown}."]

    lines += ["", "## Plots", ""]
    titles = {"per_class_ap": "Per-class AP", "pr_curves": "Precision-recall curves", "training_curves": "Training curves"}
    for key, title in titles.items():
        if report["plots"][key]:
            lines += [f"![{title}]({report['plots'][key]})", ""]
    lines += [f"- Note: {note}" for note in report["notes"]]

    if report["extra"]:
        while lines[-1] == "":
            lines.pop()
        lines += ["", "## Details", ""]
        for key, value in report["extra"].items():
            text = value if isinstance(value, str) else json.dumps(value)
            lines.append(f"- {key}: {text}")
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------------
# plots


def _new_figure(width: float, height: float):
    """A matplotlib Figure on an Agg canvas (imported here: 0.9 s of CPU that only the plots need)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _integer_locator():
    """Tick locator for epoch / step axes: whole numbers only."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _short(name: str, limit: int = 36) -> str:
    """Class name cut to ``limit`` characters for plot labels."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _plot_per_class_ap(
    path: Path, per_class_ap: np.ndarray, num_pos: np.ndarray, class_names: Sequence[str], ranked: np.ndarray,
    map_value: float | None, chance_map: float | None, segment_ids: dict[str, list[int]], split_name: str,
) -> None:
    """Horizontal bar per class with positives, best AP at the top, coloured by segment if given."""
    n = ranked.size
    fontsize = 9 if n <= 40 else 7 if n <= 100 else 6
    fig = _new_figure(8.0, max(3.0, 1.4 + n * (0.16 if n <= 40 else 0.115)))
    ax = fig.add_subplot()
    y = np.arange(n)
    palette = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
    colour_of = np.full(len(class_names), "#4C72B0", dtype=object)
    for i, (name, ids) in enumerate(segment_ids.items()):
        colour_of[ids] = palette[i % len(palette)]
    ax.barh(y, per_class_ap[ranked], color=list(colour_of[ranked]), height=0.8)
    labels = [f"{_short(class_names[c].strip())} ({num_pos[c]})" for c in ranked]
    if n > _MAX_LABELLED_BARS:  # too many to read: name only the 25 best and 25 worst
        labels = [lab if i < 25 or i >= n - 25 else "" for i, lab in enumerate(labels)]
    ax.set_yticks(y, labels, fontsize=fontsize)
    ax.set_ylim(n - 0.5, -0.5)  # best at the top
    ax.set_xlim(0, 1)
    ax.margins(y=0)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("average precision")
    ax.xaxis.set_ticks_position("both")
    ax.tick_params(axis="x", labeltop=True)
    if map_value is not None:
        ax.axvline(map_value, color="black", linestyle="-", linewidth=1, label=f"mAP {map_value:.3f}", zorder=3)
    if chance_map is not None:
        ax.axvline(chance_map, color="grey", linestyle="--", linewidth=1, label=f"chance mAP {chance_map:.3f}", zorder=3)
    for i, name in enumerate(segment_ids):
        ax.barh([np.nan], [np.nan], color=palette[i % len(palette)], label=name)
    if map_value is not None or chance_map is not None or segment_ids:
        ax.legend(loc="lower right", fontsize=8)
    missing = len(class_names) - n
    note = f"; {missing} class(es) without positives not shown" if missing else ""
    ax.set_title(f"Per-class AP on {split_name}, {n} classes\n(positives in brackets{note})", fontsize=10)
    fig.savefig(path)


def _plot_pr_curves(
    path: Path, s: np.ndarray, t: np.ndarray, per_class_ap: np.ndarray, class_names: Sequence[str],
    ranked: np.ndarray, top_k: int, split_name: str,
) -> None:
    """Precision-recall curves of the ``top_k`` best and ``top_k`` worst classes, side by side."""
    best = ranked[:top_k].tolist()
    worst = [c for c in ranked[::-1][:top_k].tolist() if c not in best]
    fig = _new_figure(12.0, 5.0)
    axes = fig.subplots(1, 2)
    colours = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD"]
    for ax, title, chosen in ((axes[0], f"Best {len(best)}", best), (axes[1], f"Worst {len(worst)}", worst)):
        top = 0.0
        for i, c in enumerate(chosen):
            colour = colours[i % len(colours)]
            precision, recall = precision_recall_curve(s[:, c], t[:, c])
            top = max(top, float(precision[1:].max()))  # precision[0] = 1 is the curve's conventional start
            # 'pre' steps: precision p[k] holds on (r[k-1], r[k]], so the area under the line is the AP.
            ax.step(recall, precision, where="pre", color=colour, linewidth=1.5,
                    label=f"{_short(class_names[c].strip(), 30)}: AP {per_class_ap[c]:.3f}, {int(t[:, c].sum())} pos")
            ax.axhline(t[:, c].mean(), color=colour, linestyle=":", linewidth=1)  # a random ranking's precision
        # Bad classes hug the bottom; zoom the y axis so their curves can be told apart.
        y_max = 1.03 if top > 0.5 else max(0.05, 1.2 * top)
        zoom = "" if y_max > 1 else ", y axis zoomed"
        ax.set_title(f"{title} classes by AP on {split_name}{zoom}" if chosen else "no further classes", fontsize=10)
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(0, y_max)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision (dotted: positive rate = chance)")
        ax.grid(alpha=0.3)
        if chosen:
            ax.legend(loc="best", fontsize=8, framealpha=0.8)
    fig.savefig(path)


def _axis_key(records: list[Mapping[str, Any]], preference: tuple[str, ...]) -> str | None:
    """The first key every record has a number for, or None (then the record index is used)."""
    for key in preference:
        if all(_is_number(r.get(key)) for r in records):
            return key
    return None


def _curve_metric(evals: list[Mapping[str, Any]]) -> str | None:
    """Which eval metric to draw: a preferred headline metric, else the first numeric metric key."""
    keys = [k for r in evals for k, v in r.items() if k not in _BOOKKEEPING_KEYS and _is_number(v)]
    for key in _CURVE_METRIC_PREFERENCE:
        if key in keys:
            return key
    return keys[0] if keys else None


def _plot_training_curves(
    path: Path, records: list[Mapping[str, Any]], chance: dict[str, float | None], split_name: str
) -> bool:
    """Training loss and an eval metric per split over training; False (nothing written) without data."""
    # Records with a "split" are evaluations; other records with a "loss" are training steps.
    train = [r for r in records if "split" not in r and _is_number(r.get("loss"))]
    evals = [r for r in records if "split" in r]
    metric = _curve_metric(evals)
    if metric is None:
        evals = []
    if not train and not evals:
        return False
    fig = _new_figure(12.0 if train and evals else 7.0, 4.5)
    axes = list(fig.subplots(1, int(bool(train)) + int(bool(evals))).flat) if train and evals else [fig.add_subplot()]

    if train:
        ax = axes[0]
        x_key = _axis_key(train, ("step", "epoch"))
        x = np.array([r[x_key] for r in train] if x_key else range(len(train)), dtype=np.float64)
        loss = np.array([r["loss"] for r in train], dtype=np.float64)
        ax.plot(x, loss, color="#4C72B0", linewidth=0.8, alpha=0.4 if loss.size > 50 else 1.0, label="loss")
        if loss.size > 50:  # noisy per-step losses: overlay a trailing mean
            w = max(5, loss.size // 50)
            smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
            ax.plot(x[w - 1 :], smooth, color="#4C72B0", linewidth=1.8, label=f"mean of last {w}")
        ax.set_xlabel(x_key or "record")
        ax.xaxis.set_major_locator(_integer_locator())
        ax.set_ylabel("training loss")
        ax.set_title("Training loss", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

    if evals:
        ax = axes[-1]
        x_key = _axis_key(evals, ("epoch", "step"))
        splits = list(dict.fromkeys(str(r["split"]) for r in evals))
        for i, split in enumerate(splits):
            rows = [(j, r) for j, r in enumerate(evals) if str(r["split"]) == split and _is_number(r.get(metric))]
            x = [r[x_key] if x_key else j for j, r in rows]
            line, = ax.plot(x, [r[metric] for _, r in rows], marker="o", markersize=3, linewidth=1.5, label=split)
            logged = rows[-1][1].get("chance") if rows else None  # the trainer logs each split's chance level
            if split != split_name and isinstance(logged, Mapping) and _is_number(logged.get(metric)):
                ax.axhline(logged[metric], color=line.get_color(), linestyle=":", linewidth=1, label=f"chance ({split})")
        if chance.get(metric) is not None:
            ax.axhline(chance[metric], color="grey", linestyle="--", linewidth=1, label=f"chance ({split_name})")
        ax.set_xlabel(x_key or "evaluation")
        ax.xaxis.set_major_locator(_integer_locator())
        label = "mAP" if metric == "map" else metric
        ax.set_ylabel(label)
        ax.set_title(f"Evaluation {label} per split", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path)
    return True
