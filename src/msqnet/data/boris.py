"""BORIS project files (``.boris``): behaviours coded in BORIS as training data, and msqnet's events as a project.

`BORIS <https://www.boris.unito.it>`_ (Behavioral Observation Research Interactive Software) keeps a
project as one JSON document (project format 7, BORIS 8), of which this module reads and writes::

    {"project_format_version": "7.0", "project_name": ..., "time_format": "hh:mm:ss",
     "behaviors_conf": {"0": {"type": "State event", "key": "a", "code": "walking", "description": "",
                              "category": "", "modifiers": {}, "excluded": "", "coding map": "", "color": ""}},
     "subjects_conf": {"0": {"key": "1", "name": "rat 1", "description": ""}},
     "observations": {"<observation id>": {
         "type": "MEDIA", "file": {"1": ["<media path>"], "2": [], ...}, "time offset": 0,
         "media_info": {"length": {"<media path>": seconds}, "fps": {...}, "hasVideo": {...}, ...},
         "events": [[time, subject, code, modifier, comment, frame index], ...], ...}}, ...}

A *state event* is two rows of ``events`` with the same subject and code: the first START, the next
STOP (BORIS pairs them in time order); a point event is one row. Event times are observation time:
media time plus the observation's ``time offset``. Media paths are absolute or relative to the
project file's folder. ``.boris.gz`` (gzip) projects are read too.

:func:`read_boris_project` gives the observations with their media file and state events;
:func:`import_boris` cuts each observation at every START/STOP into clips labelled with the
behaviours going on, written in the generic format; :func:`boris_project` builds a project from
events (``msqnet predict --events``).
"""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..utils import atomic_write_text, quote

__all__ = ["BorisError", "StateEvent", "Observation", "BorisProject", "read_boris_project", "clip_spans",
           "import_boris", "boris_project", "PROJECT_FORMAT"]

PROJECT_FORMAT = "7.0"
_STATE, _POINT = "State event", "Point event"
_PLAYERS = [str(i) for i in range(1, 9)]


class BorisError(ValueError):
    """A BORIS project that cannot be read as one: not JSON, keys missing, unpaired state events."""


@dataclass(frozen=True)
class StateEvent:
    """One coded state event: ``behaviour`` of ``subject`` from ``start`` to ``stop`` (media seconds)."""

    behaviour: str
    subject: str
    start: float
    stop: float


@dataclass
class Observation:
    """One observation of a media file: its id, the file, its length (if recorded) and state events."""

    id: str
    media: Path
    length: float | None
    events: list[StateEvent] = field(default_factory=list)
    point_events: int = 0


@dataclass
class BorisProject:
    """The observations of a project with one media file each, its state behaviours, and what was skipped."""

    path: Path
    behaviours: list[str]
    observations: list[Observation]
    skipped: list[str] = field(default_factory=list)


def _load_json(path: Path) -> dict[str, Any]:
    """The project document of a ``.boris`` or ``.boris.gz`` file."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        doc = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise BorisError(f"{path}: BORIS project not found") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise BorisError(f"{path}: cannot read the BORIS project ({e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BorisError(f"{path}: not a BORIS project (BORIS saves JSON; {e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("observations"), dict) \
            or not isinstance(doc.get("behaviors_conf"), dict):
        raise BorisError(f"{path}: not a BORIS project: expected a JSON object with 'observations' and "
                         "'behaviors_conf'")
    return doc


def _number(value: Any, where: str) -> float:
    """A time value of the project (BORIS writes numbers; strings of numbers are accepted)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BorisError(f"{where}: expected a time in seconds, got {quote(value)}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise BorisError(f"{where}: expected a finite time in seconds, got {quote(value)}")
    return number


def _state_events(path: Path, obs_id: str, rows: Sequence[Any], kinds: Mapping[str, str],
                  offset: float) -> tuple[list[StateEvent], int]:
    """Pair an observation's state-event rows into START/STOP events (media time); count point events."""
    open_at: dict[tuple[str, str], float] = {}
    events: list[StateEvent] = []
    points = 0
    timed = []
    for i, row in enumerate(rows):
        where = f"{path}: observation {quote(obs_id)}, event {i}"
        if not isinstance(row, list) or len(row) < 3:
            raise BorisError(f"{where}: expected [time, subject, behaviour, ...], got {quote(row)}")
        timed.append((_number(row[0], where), i, str(row[1] or ""), str(row[2])))
    for time, i, subject, code in sorted(timed):
        kind = kinds.get(code)
        if kind is None:
            raise BorisError(f"{path}: observation {quote(obs_id)}, event {i}: behaviour {quote(code)} is not in the "
                             "ethogram (behaviors_conf)")
        if kind != _STATE:
            points += 1
            continue
        key = (subject, code)
        if key in open_at:
            events.append(StateEvent(code, subject, open_at.pop(key) - offset, time - offset))
        else:
            open_at[key] = time
    if open_at:
        (subject, code), time = next(iter(open_at.items()))
        raise BorisError(f"{path}: observation {quote(obs_id)}: state event {quote(code)}"
                         + (f" of subject {quote(subject)}" if subject else "") + f" starts at {time:g} s and never "
                         "stops (unpaired START); close it in BORIS and save again")
    return sorted(events, key=lambda e: (e.start, e.behaviour)), points


def read_boris_project(path: str | os.PathLike) -> BorisProject:
    """The media observations of a BORIS project, each with its one media file and paired state events.

    Observations of live sessions, of images, or with several media files are skipped (and named in
    ``skipped``); a state event without its STOP is an error naming the observation.
    """
    path = Path(path)
    doc = _load_json(path)
    kinds: dict[str, str] = {}
    for key, b in doc["behaviors_conf"].items():
        if not isinstance(b, dict) or not isinstance(b.get("code"), str):
            raise BorisError(f"{path}: behaviors_conf.{key}: expected an object with a 'code'")
        kinds[b["code"]] = b.get("type", _STATE)
    behaviours = [code for code, kind in kinds.items() if kind == _STATE]
    observations: list[Observation] = []
    skipped: list[str] = []
    for obs_id, obs in doc["observations"].items():
        if not isinstance(obs, dict):
            raise BorisError(f"{path}: observation {quote(obs_id)}: expected an object")
        files = obs.get("file") or {}
        media = [m for p in _PLAYERS for m in (files.get(p) or [])] if isinstance(files, dict) else []
        if obs.get("type") != "MEDIA" or len(media) != 1:
            why = f"type {obs.get('type')}" if obs.get("type") != "MEDIA" else f"{len(media)} media files"
            skipped.append(f"{obs_id} ({why})")
            continue
        offset = _number(obs.get("time offset", 0) or 0, f"{path}: observation {quote(obs_id)}, time offset")
        events, points = _state_events(path, obs_id, obs.get("events") or [], kinds, offset)
        file = Path(media[0])
        length = ((obs.get("media_info") or {}).get("length") or {}).get(media[0])
        observations.append(Observation(obs_id, file if file.is_absolute() else path.parent / file,
                                        None if length is None else float(length), events, points))
    return BorisProject(path, behaviours, observations, skipped)


def clip_spans(events: Sequence[StateEvent], *, min_seconds: float = 0.5) -> list[tuple[float, float, list[str]]]:
    """An observation cut at every START and STOP: ``(start, end, behaviours going on)`` for each piece
    covered by at least one state event and at least ``min_seconds`` long."""
    cuts = sorted({t for e in events for t in (e.start, e.stop)})
    pieces = []
    for a, b in zip(cuts, cuts[1:]):
        if b - a < min_seconds:
            continue
        on = sorted({e.behaviour for e in events if e.start <= a and e.stop >= b})
        if on:
            pieces.append((a, b, on))
    return pieces


def import_boris(project: str | os.PathLike, out: str | os.PathLike, *, split: str = "train",
                 min_seconds: float = 0.5) -> tuple[Path, int, BorisProject]:
    """Write a BORIS project's coded state events as a generic-format dataset in ``out``.

    ``out/classes.txt`` lists the project's state behaviours; ``out/<split>.csv`` holds one clip per
    piece of ``clip_spans`` (``path,labels,id,start,end,observation,subjects``); media files are
    linked under ``out/media/`` (symlinks, so the dataset root holds them). Returns the CSV, the
    number of clips and the project read.
    """
    pj = read_boris_project(project)
    if not pj.behaviours:
        raise BorisError(f"{pj.path}: the ethogram has no state events; nothing to train on")
    out = Path(out)
    (out / "media").mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "labels", "id", "start", "end", "observation", "subjects"])
    clips = 0
    for k, obs in enumerate(pj.observations):
        if not obs.media.is_file():
            raise BorisError(f"{pj.path}: observation {quote(obs.id)}: media file {obs.media} not found")
        link = out / "media" / f"{k:04d}_{obs.media.name}"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(obs.media.resolve())
        for start, end, labels in clip_spans(obs.events, min_seconds=min_seconds):
            subjects = sorted({e.subject for e in obs.events if e.start <= start and e.stop >= end and e.subject})
            writer.writerow([f"media/{link.name}", ";".join(labels), f"{obs.id}@{start:.3f}-{end:.3f}",
                             f"{start:.3f}", f"{end:.3f}", obs.id, ";".join(subjects)])
            clips += 1
    atomic_write_text(out / "classes.txt", "\n".join(pj.behaviours) + "\n")
    csv_path = out / f"{split}.csv"
    atomic_write_text(csv_path, buf.getvalue())
    return csv_path, clips, pj


def boris_project(observations: Iterable[tuple[str, float | None, float | None, Sequence[tuple[str, float, float]]]],
                  behaviours: Sequence[str], *, name: str = "msqnet events") -> dict[str, Any]:
    """A BORIS project document with one observation per media file and its events as state events.

    ``observations``: ``(media path, length s or None, fps or None, [(behaviour, start, end), ...])``;
    ``behaviours``: the ethogram (every label, detected or not).
    """
    now = dt.datetime.now().replace(microsecond=0).isoformat()
    keys = "abcdefghijklmnopqrstuvwxyz0123456789"
    ethogram = {str(i): {"type": _STATE, "key": keys[i] if i < len(keys) else "", "code": b, "description": "",
                         "category": "", "modifiers": {}, "excluded": "", "coding map": "", "color": ""}
                for i, b in enumerate(behaviours)}
    obs_doc: dict[str, Any] = {}
    for media, length, fps, events in observations:
        rows = []
        for behaviour, start, end in events:
            for t in (start, end):
                rows.append([round(t, 3), "", behaviour, "", "msqnet", round(t * fps) if fps else 0])
        rows.sort(key=lambda r: r[0])
        obs_id = Path(media).name
        while obs_id in obs_doc:
            obs_id += "'"
        obs_doc[obs_id] = {
            "file": {p: ([str(media)] if p == "1" else []) for p in _PLAYERS},
            "type": "MEDIA", "date": now, "description": "events detected by msqnet", "time offset": 0,
            "events": rows, "observation time interval": [0, 0], "independent_variables": {},
            "visualize_spectrogram": False, "visualize_waveform": False, "media_creation_date_as_offset": False,
            "media_scan_sampling_duration": 0, "image_display_duration": 1, "close_behaviors_between_videos": False,
            "media_info": {"length": {str(media): length or 0}, "fps": {str(media): fps or 0},
                           "hasVideo": {str(media): True}, "hasAudio": {str(media): False}, "offset": {"1": 0}},
        }
    return {"time_format": "hh:mm:ss", "project_date": now, "project_name": name,
            "project_description": "behaviour events detected by msqnet predict --events",
            "project_format_version": PROJECT_FORMAT, "subjects_conf": {}, "behaviors_conf": ethogram,
            "observations": obs_doc, "behavioral_categories": [], "independent_variables": {}, "coding_map": {},
            "behaviors_coding_map": [], "converters": {}}
