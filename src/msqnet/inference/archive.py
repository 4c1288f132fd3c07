"""Prediction over long lists of videos into a JSON-lines file: one line per video, resumable, sharded.

``msqnet predict --files LIST.txt --out preds.jsonl`` runs :func:`predict_to_jsonl`:

* **As it completes**: each video's line (``Prediction.to_dict()``) is appended the moment its last
  clip is scored, as one ``write()`` on an ``O_APPEND`` descriptor, so a crash leaves only whole
  lines (a torn last line, which only a power cut can leave, is cut off when the file is resumed).
* **Resumable**: ``resume=True`` skips every video that already has a successful line (failed ones
  are tried again). Every line records what it was made with (``made_with``: the model's
  fingerprint, the labels, window and stride, test view, precision, --view, --threshold and --events;
  :func:`run_settings`), and a resume with other settings is refused, so one file never mixes two
  runs' numbers. A line that is
  not a valid result (NaN, a string or a list where a probability belongs) is scored again and never
  copied into the final file. Only a file of msqnet's lines is ever resumed or repaired: anything
  else at ``--out`` (a video, the input list) is refused before a byte of it changes.
* **Sharded**: under ``torchrun`` rank 0 decides what is left to do, every rank scores every
  ``world_size``-th of those videos into its own part file (``preds.jsonl.part-00003``), and
  rank 0 merges the parts into ``preds.jsonl`` in input order once every rank has said it is done
  (ranks wait on marker files, not on a collective call, so no timeout limits how unevenly they
  finish). The output folder must be shared by the ranks.
* **Finally** the file is rewritten (atomically) with one line per video in input order: after a
  resume, a retried video's new line replaces its old error line.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from tqdm import tqdm

from ..checkpoint import checkpoint_state
from ..config_loader import to_dict
from ..data.decode import probe
from ..engine.distributed import DistInfo, broadcast_object
from ..utils import atomic_write_text, quote, read_text
from .decisions import label_decisions
from .events import EventOptions, events_of
from .predict import ModelScorer, Scorer, iter_predictions
from .whole_video import ViewMode

__all__ = ["JsonlSummary", "read_file_list", "read_jsonl", "append_jsonl_line", "merge_jsonl", "model_fingerprint",
           "run_settings", "record_problem", "predict_to_jsonl"]

log = logging.getLogger(__name__)

_MARKER_POLL_S = 0.5


@dataclass
class JsonlSummary:
    """What one ``predict_to_jsonl`` call did (rank 0: over every rank; other ranks: their own part)."""

    out: Path
    videos: int
    processed: int
    failed: list[str]
    skipped: int
    seconds: float
    invalid: int = 0  # lines of a resumed file that held no valid result (their videos scored again)

    def format(self) -> str:
        """A readable end-of-run line."""
        rate = self.processed / self.seconds if self.seconds > 0 else 0.0
        text = (f"{self.processed} video(s) processed in {self.seconds:.1f} s ({rate:.2f} videos/s), "
                f"{self.skipped} already done, {len(self.failed)} failed; {self.videos} videos in {self.out}")
        if self.invalid:
            text += (f"\n{self.invalid} line(s) of the resumed file held no valid prediction: their videos were "
                     "scored again")
        if self.failed:
            text += "\nfailed: " + "; ".join(self.failed[:10]) + (" ..." if len(self.failed) > 10 else "")
        return text


def read_file_list(path: str | os.PathLike) -> list[str]:
    """The videos of a list file: one path per line (as given, relative to the working directory);
    blank lines and ``#`` comments are ignored, repeated paths kept once."""
    path = Path(path)
    sources: list[str] = []
    seen: set[str] = set()
    for line in read_text(path, "file list").splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#") and entry not in seen:
            seen.add(entry)
            sources.append(entry)
    if not sources:
        raise ValueError(f"{path}: the file list names no videos")
    return sources


def read_jsonl(path: Path, *, repair: bool = False,
               check: Callable[[int, dict[str, Any]], None] | None = None) -> list[tuple[int, dict[str, Any]]]:
    """The ``(line number, record)`` pairs of a predictions file, every line checked to be one msqnet
    writes (an object with a ``source`` and ``made_with``), and passed to ``check`` (which raises to
    refuse the file), before anything is changed. A torn last line (no newline) is an error, or with
    ``repair`` is cut off the file (logged); only a file whose complete lines all passed is ever cut."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    records = _parse_lines(path, data[:complete])
    for number, record in records if check is not None else ():
        check(number, record)
    if complete < len(data):
        if not records:  # msqnet writes whole lines: bytes without one complete line are not its file
            raise ValueError(f"{path}: holds no complete line; not a predictions file msqnet wrote, so it is "
                             "left as it is: write another --out")
        if not repair:
            raise ValueError(f"{path}: the last line is incomplete (an interrupted write); resume to repair it")
        log.warning("%s: cutting off an incomplete last line (%d bytes) left by an interrupted write", path,
                    len(data) - complete)
        with open(path, "r+b") as f:
            f.truncate(complete)
    return records


def _parse_lines(path: Path, data: bytes) -> list[tuple[int, dict[str, Any]]]:
    """The records of complete lines; an error naming the first line that msqnet did not write."""
    refuse = "; is --out the right file? it is left as it is"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text, not a predictions file written by msqnet{refuse}") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{number}: not a JSON line ({e}){refuse}") from None
        if (not isinstance(record, dict) or not isinstance(record.get("source"), str)
                or not isinstance(record.get(MADE_WITH), dict)):
            raise ValueError(f"{path}:{number}: not a line msqnet predict writes (an object with 'source' and "
                             f"'{MADE_WITH}'), got {quote(line)}{refuse}")
        records.append((number, record))
    return records


def append_jsonl_line(fd: int, record: dict[str, Any]) -> None:
    """Append one record as one line with a single ``write()`` (``fd`` opened with ``O_APPEND``)."""
    data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    written = os.write(fd, data)
    while written < len(data):  # only a full disk or a signal makes a regular file's write short
        written += os.write(fd, data[written:])


def _part_paths(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f"{out.name}.part-*"))


def _part_path(out: Path, rank: int) -> Path:
    return out.with_name(f"{out.name}.part-{rank:05d}")


def _marker_path(out: Path, run: str, rank: int) -> Path:
    return out.with_name(f".{out.name}.done-{run}-{rank:05d}")


def _best_records(out: Path, settings: dict[str, Any] | None, labels: Sequence[str] | None, *,
                  repair: bool) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Per video, the record to keep from ``out`` and its part files: the newest success, else the newest
    error; and ``file:line: why`` of each line left out. A line made with other ``settings`` is refused
    (ValueError naming it); a line that is not a valid result for ``labels`` is left out, so its video
    counts as not done."""
    best: dict[str, dict[str, Any]] = {}
    invalid: list[str] = []
    for path in [out, *_part_paths(out)]:
        def same_settings(number: int, record: dict[str, Any], path: Path = path) -> None:
            if settings is not None and record.get("error") is None:  # failed lines are re-done anyway
                _check_same_settings(path, number, record[MADE_WITH], settings)

        for number, record in read_jsonl(path, repair=repair, check=same_settings):
            problem = None if labels is None else record_problem(record, labels, settings)
            if problem is not None:
                invalid.append(f"{path}:{number}: {problem}")
                continue
            old = best.get(record["source"])
            if old is None or record.get("error") is None or old.get("error") is not None:
                best[record["source"]] = record
    return best, invalid


def merge_jsonl(out: str | os.PathLike, sources: Sequence[str], *, settings: dict[str, Any] | None = None,
                labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rewrite ``out`` atomically from itself and its part files: one line per video, in the order of
    ``sources`` (videos not in it last, in file order); the part files are removed. With ``labels``,
    lines that are not valid results are dropped (and with ``settings``, lines made with others
    refused). Returns the records."""
    out = Path(out)
    best, _ = _best_records(out, settings, labels, repair=True)
    listed = set(sources)
    records = [best[s] for s in sources if s in best] + [r for s, r in best.items() if s not in listed]
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    for part in _part_paths(out):
        part.unlink()
    return records


# --- what a file was made with, and what a line must hold ----------------------------------------

MADE_WITH = "made_with"

# How each recorded setting is named in a refusal, and the option that sets it.
_SETTING_NAMES = {
    "model": "another model (--checkpoint: other weights or config)",
    "labels": "other labels (--labels)",
    "window": "another --window",
    "stride": "another --stride",
    "test_view": "another test view (--test-clips / --test-crops / --aggregate)",
    "precision": "another --precision",
    "view": "another --view",
    "threshold": "another --threshold",
    "events": "other --events settings",
}


def _digest(data: bytes | Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in [data] if isinstance(data, bytes) else data:
        h.update(chunk)
    return h.hexdigest()[:16]


def model_fingerprint(model) -> str:
    """16 hex digits naming a model's exact config and weights (as loaded, in the dtype it computes in),
    or an exported ONNX file's bytes: the model a predictions file was made with."""
    if not isinstance(model, torch.nn.Module):  # an OnnxRuntimeModel: the exported file is the model
        with open(model.path, "rb") as f:
            return _digest(iter(lambda: f.read(1 << 20), b""))

    def chunks() -> Iterator[bytes]:
        yield json.dumps(to_dict(model.cfg), sort_keys=True).encode()
        for name, t in checkpoint_state(model).items():  # what its checkpoint holds (frozen sources: the config)
            yield f"{name}:{t.dtype}:{tuple(t.shape)}".encode()
            yield t.reshape(-1).view(torch.uint8).numpy().tobytes()

    return _digest(chunks())


def run_settings(model, labels: Sequence[str], *, window: float | None, stride: float | None,
                 precision: str | None, view: ViewMode = "auto", threshold: float | None = None,
                 events: EventOptions | None = None) -> dict[str, Any]:
    """What this run's lines are made with (``made_with``): a resume must use the same."""
    return {  # in the order a refusal names the first difference: the model last, as a cast changes its bytes
        "labels": _digest("\n".join(sorted(labels)).encode()),
        "window": window,
        "stride": None if window is None else (stride if stride is not None else window),
        "test_view": dataclasses.asdict(model.test_view),
        "precision": precision,
        "view": view,
        "threshold": threshold,
        "events": None if events is None else dataclasses.asdict(events),
        "model": model_fingerprint(model),
    }


def _check_same_settings(path: Path, number: int, made_with: dict[str, Any], settings: dict[str, Any]) -> None:
    """A successful line of a resumed file must have been made with this run's settings."""
    for key, value in settings.items():
        old = made_with.get(key)
        if old != value:
            values = " than this run's" if key == "labels" else f": {quote(old)}, this run's is {quote(value)}"
            raise ValueError(
                f"{path}:{number}: its predictions were made with {_SETTING_NAMES.get(key, key)}{values}; "
                "resume with the settings the file was made with, or write another --out"
            )


def _is_probability(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def _probabilities_problem(probs: Any, labels: set[str]) -> str | None:
    if not isinstance(probs, dict):
        return f"expected label -> probability, got {type(probs).__name__}"
    if set(probs) != labels:
        return "its labels are not this run's"
    bad = next((k for k, v in probs.items() if not _is_probability(v)), None)  # NaN fails 0 <= p <= 1 too
    return None if bad is None else f"{quote(bad)}: expected a probability in [0, 1], got {quote(probs[bad])}"


def record_problem(record: dict[str, Any], labels: Sequence[str], settings: dict[str, Any] | None = None) -> str | None:
    """Why a line cannot stand as a video's result for ``labels`` (None: it can): an error line needs a
    message, a result finite probabilities in [0, 1] for exactly those labels, and windows (with
    ``settings``: exactly when the run has a window) of finite, ordered times and valid probabilities."""
    error = record.get("error")
    if error is not None:
        return None if isinstance(error, str) and record.get("probabilities") is None else "a malformed error line"
    names = set(labels)
    problem = _probabilities_problem(record.get("probabilities"), names)
    if problem is not None:
        return f"probabilities: {problem}"
    windows = record.get("windows")
    if not isinstance(windows, list):
        return f"windows: expected a list, got {type(windows).__name__}"
    if settings is not None and settings["window"] is not None and not windows:
        return "windows: missing under --window"
    if settings is not None and settings["window"] is None and windows and record.get("view") != "windows":
        return "windows: present without --window"  # a long video's automatic windows say view: windows
    for k, w in enumerate(windows):
        if not isinstance(w, dict):
            return f"windows[{k}]: expected an object, got {type(w).__name__}"
        start, end = w.get("start"), w.get("end")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in (start, end)) \
                or start > end:
            return f"windows[{k}]: expected finite start <= end seconds, got {quote(start)}, {quote(end)}"
        problem = _probabilities_problem(w.get("probabilities"), names)
        if problem is not None:
            return f"windows[{k}].probabilities: {problem}"
    return None


def _plan(out: Path, sources: Sequence[str], settings: dict[str, Any], labels: Sequence[str],
          resume: bool) -> tuple[list[tuple[int, str]], int, int]:
    """Rank 0: the ``(index, source)`` pairs still to score, how many are already done, and how many
    lines held no valid result."""
    existing = out.exists() or bool(_part_paths(out))
    if existing and not resume:
        raise ValueError(f"{out}: already exists; pass --resume to continue it, or write another --out")
    if out.exists() and not out.is_file():
        raise ValueError(f"{out}: is not a regular file; --out names the predictions file to write")
    done, invalid = _best_records(out, settings, labels, repair=True) if resume else ({}, [])
    if invalid:
        log.warning("%d line(s) hold no valid prediction; their videos are scored again: %s", len(invalid),
                    "; ".join(invalid[:3]) + (" ..." if len(invalid) > 3 else ""))
    finished = {s for s, r in done.items() if r.get("error") is None}
    todo = [(i, s) for i, s in enumerate(sources) if s not in finished]
    return todo, len(sources) - len(todo), len(invalid)


def _wait_for_ranks(out: Path, run: str, world_size: int) -> None:
    """Rank 0: wait until every rank has written its done marker."""
    waiting = list(range(1, world_size))
    last_note = time.monotonic()
    while waiting:
        waiting = [r for r in waiting if not _marker_path(out, run, r).exists()]
        if waiting:
            if time.monotonic() - last_note > 60:
                log.info("waiting for rank(s) %s to finish", waiting)
                last_note = time.monotonic()
            time.sleep(_MARKER_POLL_S)


def predict_to_jsonl(
    sources: Sequence[str],
    out: str | os.PathLike,
    score: Scorer,
    labels: Sequence[str],
    *,
    model,
    dist: DistInfo,
    window: float | None = None,
    stride: float | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    resume: bool = False,
    progress: bool = True,
    view: ViewMode = "auto",
    threshold: float | None = None,
    events: EventOptions | None = None,
) -> JsonlSummary:
    """Score ``sources`` into the JSON-lines file ``out`` (see the module docstring).

    ``score`` scores batches of clips for ``labels``; ``model`` gives the test view, frame count,
    size, training-clip seconds and decision thresholds; ``view`` and ``threshold`` are those of
    ``msqnet.inference.predict.predict``; with ``events`` each line also holds the video's behaviour events
    (``events``, placed on ``events_duration`` seconds at ``events_fps``); ``dist`` is this process's
    place in a ``torchrun`` job (world size 1: alone). With ``score``'s precision (a
    :class:`~msqnet.inference.predict.ModelScorer`'s), these settings are what every line records it was made with.
    """
    out = Path(out)
    start = time.perf_counter()
    settings = run_settings(model, labels, window=window, stride=stride,
                            precision=score.precision if isinstance(score, ModelScorer) else None, view=view,
                            threshold=threshold, events=events)
    plan: Any = None
    if dist.is_main:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            plan = (*_plan(out, sources, settings, labels, resume), uuid.uuid4().hex[:12])
        except (ValueError, OSError) as e:
            plan = e
    plan = broadcast_object(plan)  # every rank fails alike, or shares rank 0's plan
    if isinstance(plan, Exception):
        raise plan
    todo, skipped, invalid, run = plan
    mine = todo[dist.rank :: dist.world_size]
    target = out if dist.world_size == 1 else _part_path(out, dist.rank)
    failed: list[str] = []
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        stream = iter_predictions(mine, score, labels, view=model.test_view, num_frames=model.cfg.num_frames,
                                  size=model.cfg.image_size, window=window, stride=stride, batch_size=batch_size,
                                  num_workers=num_workers, mode=view, clip_seconds=getattr(model, "clip_seconds", None),
                                  multi_label=model.multi_label, decisions=label_decisions(model, labels, threshold))
        for _, pred in tqdm(stream, total=len(mine), desc="predict", unit="video", disable=not progress,
                            dynamic_ncols=True):
            record = pred.to_dict()
            if events is not None and pred.error is None:
                info = probe(pred.source)
                record["events"] = [e.to_dict() for e in events_of(pred, events, duration=info.duration)]
                record["events_duration"], record["events_fps"] = info.duration, info.fps
            try:
                append_jsonl_line(fd, {**record, MADE_WITH: settings})
            except OSError as e:  # a full disk: name the file (a bare write() error names none)
                raise OSError(e.errno, f"{e.strerror} while appending to it; the lines before stay (--resume "
                                       f"continues the file)", str(target)) from None
            if pred.error:
                failed.append(pred.error)
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - start
    if not dist.is_main:
        _marker_path(out, run, dist.rank).touch()
        return JsonlSummary(out, len(sources), len(mine), failed, skipped, seconds)
    _wait_for_ranks(out, run, dist.world_size)
    records = merge_jsonl(out, sources, settings=settings, labels=labels)
    for marker in out.parent.glob(f".{out.name}.done-*"):
        marker.unlink()
    listed = set(sources)
    failed = [r["error"] for r in records if r["source"] in listed and r.get("error") is not None]
    return JsonlSummary(out, len(records), len(todo), failed, skipped, time.perf_counter() - start, invalid)
