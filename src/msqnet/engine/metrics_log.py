"""The run's metrics log: ``metrics.jsonl`` (one JSON record per line) and, when installed, TensorBoard.

Training writes a ``{"kind": "train", "epoch", "step", "loss", "lr", "clips_per_s", "time"}`` record
every ``log_every`` optimiser steps and a ``{"kind": "eval", "epoch", "step", "split", <metrics>...,
"chance", "num_clips", "skipped", "time"}`` record per evaluation. A resumed run keeps the records
its training state counted and drops the rest (the interrupted run wrote them after its last
checkpoint and the resumed one writes them again). Reports, model cards and the demo read the log
back with :func:`read_metrics_log`.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..utils import atomic_write_text, json_text

__all__ = ["MetricsLog", "read_metrics_log"]

log = logging.getLogger(__name__)

# Record keys that are bookkeeping, not numbers to plot.
_NOT_PLOTTED = ("kind", "split", "step", "epoch", "time")


def read_metrics_log(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (its first ``limit`` lines); a damaged line is dropped with a warning."""
    path = Path(path)
    records = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for n, line in enumerate(lines[:limit], 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:  # a damaged log costs its lines, not the run
            log.warning("%s:%d: not a JSON record; left out of the history", path, n)
    return records


class MetricsLog:
    """Appends records to ``metrics.jsonl`` (strict JSON: non-finite numbers become ``null``) and their
    numbers to TensorBoard; on one process only (rank 0).

    Args:
        path: the JSONL file.
        enabled: write anything at all (False on ranks other than 0).
        keep_records: on resume, keep only this many existing lines (drop what the interrupted
            run logged after its last checkpoint); ``None`` starts a new file.
        tensorboard_dir: TensorBoard log folder, or ``None``.
    """

    def __init__(self, path: Path, *, enabled: bool, keep_records: int | None = None,
                 tensorboard_dir: Path | None = None):
        self.path = path
        self.enabled = enabled
        self.records: list[dict[str, Any]] = []
        self._tb = None
        if not enabled:
            return
        if keep_records is not None and path.is_file():
            self.records = read_metrics_log(path, keep_records)
        atomic_write_text(path, "".join(json_text(r) + "\n" for r in self.records))
        self._file = open(path, "a", encoding="utf-8")
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("tensorboard: true, but the tensorboard package is not installed "
                            "(pip install tensorboard); metrics go to %s only", path)
            else:
                self._tb = SummaryWriter(str(tensorboard_dir))

    @property
    def count(self) -> int:
        """Records in the log (what a training state remembers, to resume the log with it)."""
        return len(self.records)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (and its numbers to TensorBoard)."""
        if not self.enabled:
            return
        self._file.write(json_text(record) + "\n")
        self._file.flush()
        self.records.append(record)
        if self._tb is not None:
            step = record.get("step", 0)
            prefix = record.get("kind", "train") if record.get("kind") != "eval" else f"eval/{record.get('split')}"
            for k, v in record.items():
                if k not in _NOT_PLOTTED and isinstance(v, (int, float)):
                    self._tb.add_scalar(f"{prefix}/{k}", v, step)

    def close(self) -> None:
        """Flush and close."""
        if self.enabled:
            self._file.close()
            if self._tb is not None:
                self._tb.close()
