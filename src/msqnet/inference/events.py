"""Behaviour events from a timeline: "from 12.5 s to 19.0 s, label X" per label, with hysteresis.

A timeline (``Prediction.windows``: overlapping windows with per-label scores) is read as one score
per *cell*, each window standing for the span around its centre: cell edges lie halfway between
neighbouring window centres, the first and last cells reach the timeline's ends (as the timeline
plot draws it). Per label, an event starts in a cell whose score is above the label's threshold
and lasts while the score stays above ``threshold - hysteresis`` (so a score wavering around the
threshold is one event, not many). Events of a label less than ``min_gap`` seconds apart are merged;
events shorter than ``min_duration`` are dropped. Each event has its ``start``/``end`` (seconds),
``peak`` (highest window score in it) and ``mean`` (cell-length-weighted mean score).

Thresholds are those of ``msqnet.inference.decisions``: the model's per-class thresholds, or the
one given; a label without one has no events.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.boris import boris_project
from ..utils import atomic_write_bytes, atomic_write_text, json_text

__all__ = ["EventOptions", "Event", "VideoEvents", "timeline_cells", "label_events", "events_of", "events_csv",
           "plot_ethogram", "write_event_files"]


@dataclass(frozen=True)
class EventOptions:
    """How a timeline becomes events.

    Args:
        hysteresis: an event goes on until the score falls to ``threshold - hysteresis`` or below.
        min_duration: seconds; shorter events are dropped (after merging).
        min_gap: seconds; events of one label closer than this are merged into one.
    """

    hysteresis: float = 0.05
    min_duration: float = 0.0
    min_gap: float = 0.0

    def __post_init__(self) -> None:
        for name in ("hysteresis", "min_duration", "min_gap"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name}: expected a non-negative number, got {value}")


@dataclass(frozen=True)
class Event:
    """One behaviour event: ``label`` from ``start`` to ``end`` seconds, its ``peak`` and ``mean`` score."""

    label: str
    start: float
    end: float
    peak: float
    mean: float

    @property
    def duration(self) -> float:
        """Seconds from start to end."""
        return self.end - self.start

    def to_dict(self) -> dict[str, float | str]:
        """JSON-ready view."""
        return {"label": self.label, "start": self.start, "end": self.end, "peak": self.peak, "mean": self.mean}


@dataclass
class VideoEvents:
    """The events of one video, with the video's ``duration`` and ``fps`` (for BORIS and the ethogram)."""

    source: str
    duration: float
    fps: float | None
    events: list[Event]


def timeline_cells(spans: Sequence[tuple[float, float]]) -> np.ndarray:
    """The ``(N + 1,)`` cell edges of N windows ``(start, end)`` in time order (see the module docstring)."""
    if not spans:
        raise ValueError("no windows: events need a timeline (--window, or a video longer than the training clips)")
    centres = np.array([(s + e) / 2 for s, e in spans])
    return np.concatenate([[spans[0][0]], (centres[1:] + centres[:-1]) / 2, [spans[-1][1]]])


def _runs(on: np.ndarray) -> list[tuple[int, int]]:
    """``[first, last)`` index ranges of the True runs of a bool array."""
    padded = np.r_[False, on, False].astype(np.int8)
    change = np.flatnonzero(np.diff(padded))
    return list(zip(change[::2], change[1::2]))


def label_events(label: str, edges: np.ndarray, scores: np.ndarray, threshold: float,
                 options: EventOptions = EventOptions()) -> list[Event]:
    """The events of one label from its per-cell ``scores`` (N,) on cells ``edges`` (N + 1,)."""
    low = threshold - options.hysteresis
    # Hysteresis: a cell is on above the threshold, or above the low mark while the cell before is on.
    on = np.zeros(len(scores), dtype=bool)
    for i, s in enumerate(scores):
        on[i] = s > threshold or (i > 0 and on[i - 1] and s > low)
    runs = [[a, b] for a, b in _runs(on)]
    merged: list[list[int]] = []
    for run in runs:
        if merged and edges[run[0]] - edges[merged[-1][1]] < options.min_gap:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    widths = np.diff(edges)
    events = []
    for a, b in merged:
        start, end = float(edges[a]), float(edges[b])
        if end - start < options.min_duration:
            continue
        w = widths[a:b]
        mean = float((scores[a:b] * w).sum() / w.sum()) if w.sum() > 0 else float(scores[a:b].mean())
        events.append(Event(label, start, end, float(scores[a:b].max()), mean))
    return events


def events_of(pred, options: EventOptions = EventOptions(), *, duration: float | None = None) -> list[Event]:
    """Every label's events in a prediction's timeline with its thresholds, in time order (labels without
    a threshold have none). A prediction without windows (a short video) is one cell over ``duration``."""
    if pred.decisions is None or not pred.decisions.calibrated:
        raise ValueError(f"{pred.source}: events need decision thresholds; this model has none (its scores are "
                         "uncalibrated): give --threshold P")
    if pred.windows:
        spans = [(w.start, w.end) for w in pred.windows]
        scores = np.stack([w.probabilities for w in pred.windows])  # (N windows, C)
    else:
        if duration is None:
            raise ValueError(f"{pred.source}: no timeline and no duration to place its events on")
        spans, scores = [(0.0, duration)], pred.probabilities[None, :]  # (1, C)
    edges = timeline_cells(spans)
    events = []
    for c, (label, t) in enumerate(zip(pred.labels, pred.decisions.thresholds)):
        if np.isfinite(t):
            events += label_events(label, edges, scores[:, c], float(t), options)
    return sorted(events, key=lambda e: (e.start, e.label))


def events_csv(rows: Sequence[tuple[str, Event]]) -> str:
    """``source,label,start,end,duration,peak,mean`` rows of ``(source, event)`` pairs."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source", "label", "start", "end", "duration", "peak", "mean"])
    for source, e in rows:
        writer.writerow([source, e.label, f"{e.start:.3f}", f"{e.end:.3f}", f"{e.duration:.3f}", f"{e.peak:.4f}",
                         f"{e.mean:.4f}"])
    return buf.getvalue()


def plot_ethogram(title: str, events: Sequence[Event], labels: Sequence[str], duration: float) -> bytes:
    """A PNG ethogram: one row per label, a bar per event over time (shaded by its mean score)."""
    import matplotlib  # 0.9 s of CPU to import, paid only where an ethogram is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.4 * len(labels) + 1.4))
    cmap = plt.get_cmap("viridis")
    for row, label in enumerate(labels):
        bars = [(e.start, e.duration) for e in events if e.label == label]
        colours = [cmap(0.35 + 0.65 * e.mean) for e in events if e.label == label]
        if bars:
            ax.broken_barh(bars, (row - 0.35, 0.7), facecolors=colours, edgecolor="black", linewidth=0.5)
    ax.set_yticks(range(len(labels)), list(labels))
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlim(0, max(duration, max((e.end for e in events), default=0.0)))
    ax.set_xlabel("time (s)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{title}: {len(events)} event(s)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_event_files(folder: str | Path, videos: Sequence[VideoEvents], labels: Sequence[str], *,
                      ethograms: bool = True) -> list[Path]:
    """Write ``events.csv``, ``events.json``, ``events.boris`` (a BORIS project: one observation per video,
    the events as state events) and, with ``ethograms``, ``<video name>.ethogram.png`` per video into
    ``folder``; returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "events.csv", folder / "events.json", folder / "events.boris"]
    atomic_write_text(written[0], events_csv([(v.source, e) for v in videos for e in v.events]))
    atomic_write_text(written[1], json_text([{"source": v.source, "duration": v.duration,
                                              "events": [e.to_dict() for e in v.events]} for v in videos],
                                            indent=2) + "\n")
    project = boris_project([(str(Path(v.source).resolve()), v.duration, v.fps,
                              [(e.label, e.start, e.end) for e in v.events]) for v in videos], labels)
    atomic_write_text(written[2], json.dumps(project, indent=1) + "\n")
    if ethograms:
        for v in videos:
            png = folder / f"{Path(v.source).name}.ethogram.png"
            atomic_write_bytes(png, plot_ethogram(Path(v.source).name, v.events, labels, v.duration))
            written.append(png)
    return written
