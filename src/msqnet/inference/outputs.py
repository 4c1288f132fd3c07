"""Predictions as people read them: a plain-text table, CSV rows and a timeline plot (the CLI's and the page's)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..models.msqnet import check_class_names
from ..utils import atomic_write_bytes

__all__ = ["clean_label_list", "describe_view", "describe_decisions", "format_table", "format_csv", "plot_timeline"]


def clean_label_list(names: list[str]) -> list[str]:
    """Class names stripped of blanks, blank ones dropped, then checked (``check_class_names``: none repeated)."""
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise ValueError("the label list is empty")
    return check_class_names(names, "labels")


def describe_view(p) -> str:
    """Where a prediction's whole-video scores come from, in words."""
    if p.view == "windows":
        return f"whole-video scores: {p.aggregate} over {len(p.windows)} windows of {p.window_seconds:g} s"
    return "whole-video scores: one clip over the video"


def describe_decisions(p) -> str:
    """Which labels a prediction detects and by what thresholds, or that its scores are uncalibrated."""
    if not p.calibrated:
        return "scores uncalibrated: the model has no decision thresholds (--threshold P sets one)"
    return f"detected: {', '.join(p.detected) or 'none'} ({p.decisions.source})"


def format_table(preds, top_k: int) -> str:
    """Plain-text view: each input with its view, detected labels and top labels (detected ones
    marked ``*``), and each window's top labels."""
    lines = []
    for p in preds:
        lines.append(p.source)
        if p.error:
            lines.append(f"  ERROR: {p.error}")
            continue
        lines.append(f"  {describe_view(p)}; {describe_decisions(p)}")
        detected = set(p.detected or [])
        for label, prob in p.top(top_k):
            lines.append(f"  {prob:6.3f} {'*' if label in detected else ' '} {label}")
        for w in p.windows:
            best = sorted(zip(p.labels, w.probabilities), key=lambda x: -x[1])[:top_k]
            shown = ", ".join(f"{l} {pr:.2f}" for l, pr in best)
            lines.append(f"  [{w.start:7.2f}s - {w.end:7.2f}s]  {shown}")
    return "\n".join(lines) + "\n"


def format_csv(preds) -> str:
    """One row per (input, window, label): ``source,start,end,label,probability,error,view,detected``
    (whole video: empty times, its view and 1/0 detected, empty when uncalibrated)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source", "start", "end", "label", "probability", "error", "view", "detected"])
    for p in preds:
        if p.error:
            writer.writerow([p.source, "", "", "", "", p.error, "", ""])
            continue
        detected = set(p.detected or [])
        for label, prob in zip(p.labels, p.probabilities):
            writer.writerow([p.source, "", "", label, f"{prob:.6f}", "", p.view,
                             int(label in detected) if p.calibrated else ""])
        for w in p.windows:
            for label, prob in zip(p.labels, w.probabilities):
                writer.writerow([p.source, f"{w.start:.3f}", f"{w.end:.3f}", label, f"{prob:.6f}", ""])
    return buf.getvalue()


def plot_timeline(pred, path: Path, top_k: int = 8) -> None:
    """A PNG heat map of per-window probabilities (labels x time) for one input."""
    probs = np.stack([w.probabilities for w in pred.windows], axis=1)  # (C, W)
    keep = np.argsort(-probs.max(axis=1), kind="stable")[:top_k]
    # Each window is drawn around its centre; cell edges lie halfway between neighbouring centres.
    centres = np.array([(w.start + w.end) / 2 for w in pred.windows])
    edges = np.concatenate([[pred.windows[0].start], (centres[1:] + centres[:-1]) / 2, [pred.windows[-1].end]])
    fig = Figure(figsize=(10, 0.45 * len(keep) + 1.6))  # no pyplot: no global backend or figure state
    ax = fig.subplots()
    im = ax.pcolormesh(edges, np.arange(len(keep) + 1) - 0.5, probs[keep], cmap="viridis", vmin=0, vmax=1)
    ax.invert_yaxis()
    ax.set_yticks(range(len(keep)), [pred.labels[i] for i in keep])
    ax.set_xlabel("time (s)")
    ax.set_title(Path(pred.source).name)
    fig.colorbar(im, ax=ax, label="probability")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())
