"""Prediction over long lists of videos into a JSON-lines file: one line per video, resumable, sharded.

``msqnet predict --files LIST.txt --out preds.jsonl`` runs :func:`predict_to_jsonl`:

* **As it completes**: each video's line (``Prediction.to_dict()``) is appended the moment its last
  clip is scored, as one ``write()`` on an ``O_APPEND`` descriptor, so a crash leaves only whole
  lines (a torn last line, which only a power cut can leave, is cut off when the file is resumed).
* **Resumable**: ``resume=True`` skips every video that already has a successful line (failed ones
  are tried again); the labels and windowing must be those the file was written with.
* **Sharded**: under ``torchrun`` rank 0 decides what is left to do, every rank scores every
  ``world_size``-th of those videos into its own part file (``preds.jsonl.part-00003``), and
  rank 0 merges the parts into ``preds.jsonl`` in input order once every rank has said it is done
  (ranks wait on marker files, not on a collective call, so no timeout limits how unevenly they
  finish). The output folder must be shared by the ranks.
* **Finally** the file is rewritten (atomically) with one line per video in input order: after a
  resume, a retried video's new line replaces its old error line.
"""
from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .engine.distributed import DistInfo, broadcast_object
from .data.decode import probe
from .inference.decisions import label_decisions
from .inference.events import EventOptions, events_of
from .inference.whole_video import ViewMode
from .predict import Scorer, iter_predictions
from .utils import atomic_write_text, read_text

__all__ = ["JsonlSummary", "read_file_list", "read_jsonl", "append_jsonl_line", "merge_jsonl", "predict_to_jsonl"]

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

    def format(self) -> str:
        """A readable end-of-run line."""
        rate = self.processed / self.seconds if self.seconds > 0 else 0.0
        text = (f"{self.processed} video(s) processed in {self.seconds:.1f} s ({rate:.2f} videos/s), "
                f"{self.skipped} already done, {len(self.failed)} failed; {self.videos} videos in {self.out}")
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


def read_jsonl(path: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """The records of a predictions file. A torn last line (no newline, not JSON) is an error, or with
    ``repair`` is cut off the file (logged); a bad line elsewhere is an error naming it."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        if not repair:
            raise ValueError(f"{path}: the last line is incomplete (an interrupted write); resume to repair it")
        log.warning("%s: cutting off an incomplete last line (%d bytes) left by an interrupted write", path,
                    len(data) - complete)
        with open(path, "r+b") as f:
            f.truncate(complete)
        data = data[:complete]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text; is it a predictions file written by msqnet?") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{number}: not a JSON line ({e})") from None
        if not isinstance(record, dict) or not isinstance(record.get("source"), str):
            raise ValueError(f"{path}:{number}: expected an object with a 'source', got {line[:80]!r}")
        records.append(record)
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


def _best_records(out: Path, *, repair: bool) -> dict[str, dict[str, Any]]:
    """Per video, the record to keep from ``out`` and its part files: the newest success, else the newest error."""
    best: dict[str, dict[str, Any]] = {}
    for path in [out, *_part_paths(out)]:
        for record in read_jsonl(path, repair=repair):
            old = best.get(record["source"])
            if old is None or record.get("error") is None or old.get("error") is not None:
                best[record["source"]] = record
    return best


def merge_jsonl(out: str | os.PathLike, sources: Sequence[str]) -> list[dict[str, Any]]:
    """Rewrite ``out`` atomically from itself and its part files: one line per video, in the order of
    ``sources`` (videos not in it last, in file order); the part files are removed. Returns the records."""
    out = Path(out)
    best = _best_records(out, repair=True)
    listed = set(sources)
    records = [best[s] for s in sources if s in best] + [r for s, r in best.items() if s not in listed]
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    for part in _part_paths(out):
        part.unlink()
    return records


def _check_resumable(out: Path, done: dict[str, dict[str, Any]], labels: Sequence[str], windowed: bool) -> None:
    """A resumed file must hold predictions for the same labels and (with ``--window``) windows as this
    run (its first successful line tells: one run's settings wrote it). A long video's windows of
    the automatic whole-video view are not asked for, so without ``--window`` any line resumes."""
    for record in done.values():
        if record.get("error") is not None:
            continue
        if set(record.get("probabilities") or {}) != set(labels):
            raise ValueError(f"{out}: its predictions are for other labels ({sorted(record['probabilities'])[:5]}...) "
                             "than this run's; resume with the same --labels or write another --out")
        if windowed and not record.get("windows") or not windowed and record.get("windows") and "view" not in record:
            raise ValueError(f"{out}: its predictions were made {'with' if record.get('windows') else 'without'} "
                             "--window; resume with the same windowing or write another --out")
        return


def _plan(out: Path, sources: Sequence[str], labels: Sequence[str], windowed: bool,
          resume: bool) -> tuple[list[tuple[int, str]], int]:
    """Rank 0: the ``(index, source)`` pairs still to score, and how many are already done."""
    existing = out.exists() or bool(_part_paths(out))
    if existing and not resume:
        raise ValueError(f"{out}: already exists; pass --resume to continue it, or write another --out")
    done = _best_records(out, repair=True) if resume else {}
    _check_resumable(out, done, labels, windowed)
    finished = {s for s, r in done.items() if r.get("error") is None}
    todo = [(i, s) for i, s in enumerate(sources) if s not in finished]
    return todo, len(sources) - len(todo)


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
    ``msqnet.predict.predict``; with ``events`` each line also holds the video's behaviour events
    (``events``, placed on ``events_duration`` seconds at ``events_fps``); ``dist`` is this process's
    place in a ``torchrun`` job (world size 1: alone).
    """
    out = Path(out)
    start = time.perf_counter()
    plan: Any = None
    if dist.is_main:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            plan = (*_plan(out, sources, labels, window is not None, resume), uuid.uuid4().hex[:12])
        except (ValueError, OSError) as e:
            plan = e
    plan = broadcast_object(plan)  # every rank fails alike, or shares rank 0's plan
    if isinstance(plan, Exception):
        raise plan
    todo, skipped, run = plan
    mine = todo[dist.rank :: dist.world_size]
    target = out if dist.world_size == 1 else _part_path(out, dist.rank)
    failed: list[str] = []
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        from tqdm import tqdm

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
            append_jsonl_line(fd, record)
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
    records = merge_jsonl(out, sources)
    for marker in out.parent.glob(f".{out.name}.done-*"):
        marker.unlink()
    listed = set(sources)
    failed = [r["error"] for r in records if r["source"] in listed and r.get("error") is not None]
    return JsonlSummary(out, len(records), len(todo), failed, skipped, time.perf_counter() - start)
