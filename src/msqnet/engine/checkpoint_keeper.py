"""Checkpoint keeping: a run's last and previous training states, its best-N model folders and the ``best`` link.

* **Training states** (``checkpoints/last``, ``checkpoints/previous``): a save writes a staging
  folder, verifies it, and only then moves ``last`` to ``previous`` and the new folder to ``last``.
  A failed or interrupted save leaves the earlier states as they were; a kill between the two
  renames leaves ``previous`` for ``--resume auto`` to find, which takes the newest valid state and
  skips a corrupt one with a warning.
* **Best models** (``models/epoch-NNN``): the ``keep_best`` best by the run's metric, best first;
  worse ones are deleted, and ``best`` is re-pointed atomically at the top one (a relative symlink,
  or a copy where links are unsupported).

Every process keeps the same bookkeeping; only the one that ``writes`` (rank 0) touches the disk.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from ..checkpoint import CheckpointError
from ..checkpoint.run_dir import RunDir
from ..config_loader import ConfigError
from ..utils import atomic_folder
from .state import state_position, verify_training_state, write_training_state

__all__ = ["CheckpointKeeper", "find_resume_state", "point_link"]

log = logging.getLogger(__name__)


def find_resume_state(run: RunDir | str | os.PathLike) -> Path | None:
    """The newest valid training state of a run (``last``, else ``previous``); ``None`` when it has none.

    A corrupt state is skipped with a warning when a valid one remains; when every state the run
    has is corrupt, ``CheckpointError`` lists them (nothing is deleted or overwritten).
    """
    run = run if isinstance(run, RunDir) else RunDir(run)
    found: list[tuple[tuple[int, int, int], Path]] = []
    problems: list[str] = []
    for candidate in (run.last_state, run.previous_state):
        if not candidate.exists():
            continue
        try:
            found.append((state_position(verify_training_state(candidate)), candidate))
        except CheckpointError as e:
            problems.append(str(e))
    if not found:
        if problems:
            raise CheckpointError("no valid training state to resume from: " + "; ".join(problems))
        return None
    for p in problems:
        log.warning("skipping a corrupt training state: %s", p)
    return max(found, key=lambda x: x[0])[1]


def point_link(link: Path, target: Path) -> None:
    """Make ``link`` a relative symlink to ``target`` atomically (a copy where symlinks are unsupported)."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(os.path.relpath(target, link.parent), tmp)
        if link.exists() and not link.is_symlink():
            shutil.rmtree(link)
        os.replace(tmp, link)
    except OSError:
        if tmp.is_symlink():
            tmp.unlink()
        if link.is_symlink():
            link.unlink()
        shutil.copytree(target, tmp)
        if link.exists():
            shutil.rmtree(link)
        os.replace(tmp, link)


class CheckpointKeeper:
    """Keeps a run's training states and best model folders.

    Args:
        run: the run folder.
        keep_best: how many best model folders to keep.
        writes: whether this process writes to disk (rank 0); the others only keep the bookkeeping.
    """

    def __init__(self, run: RunDir, *, keep_best: int = 1, writes: bool = True):
        self.run = run
        self.keep_best = keep_best
        self.writes = writes
        # The kept best models, best first: {"value", "epoch", "global_step", "path" (relative)}.
        self.best: list[dict[str, Any]] = []

    # -- training states ---------------------------------------------------------------------------

    def resume_path(self, resume: str | None) -> Path | None:
        """The training state ``resume`` names: ``None`` (a new run: refuses a folder that holds one),
        ``"auto"`` (the newest valid state, or ``None`` to start new), or a state or run folder."""
        if resume is None:
            if self.run.holds_run():
                raise ConfigError(f"{self.run.root} already holds a training run; resume it with --resume auto "
                                  f"or choose another output_dir")
            return None
        if resume == "auto":
            path = find_resume_state(self.run)
            if path is None:
                log.info("no training state in %s: starting a new run", self.run.root)
            return path
        path = Path(resume)
        if RunDir(path).checkpoints.is_dir():
            found = find_resume_state(RunDir(path))
            if found is None:
                raise CheckpointError(f"{path}: no training state to resume from")
            return found
        verify_training_state(path)
        return path

    def save_state(self, **state: Any) -> Path:
        """Write a training state (``write_training_state``'s arguments) as ``checkpoints/last``; the
        old ``last`` becomes ``previous``. Returns the path of ``last``."""
        last = self.run.last_state
        if self.writes:
            # mark=None: the run's own checkpoints/ folders, replaced even when a damaged state lies there.
            with atomic_folder(last, mark=None, previous=self.run.previous_state) as staging:
                write_training_state(staging, **state)
        return last

    # -- best models -------------------------------------------------------------------------------

    def restore_best(self, best: list[dict[str, Any]]) -> None:
        """Take over a resumed run's best-model list, minus folders deleted since (with a warning)."""
        kept = [b for b in best if (self.run.root / b["path"]).is_dir()]
        if len(kept) != len(best):
            log.warning("best model folder(s) missing since the checkpoint: %s",
                        [b["path"] for b in best if b not in kept])
        self.best = kept

    def offer(self, value: float, *, epoch: int, global_step: int, save: Callable[[Path], None]) -> bool:
        """Keep the model of ``epoch`` (1-based) if ``value`` ranks among the ``keep_best`` best:
        ``save(folder)`` writes it, worse folders beyond ``keep_best`` are deleted and ``best`` points
        at the top one. Returns whether it was kept."""
        if len(self.best) >= self.keep_best and value <= self.best[-1]["value"]:
            return False
        rel = RunDir.best_model_name(epoch)
        if self.writes:
            save(self.run.root / rel)
        self.best.append({"value": value, "epoch": epoch, "global_step": global_step, "path": rel})
        self.best.sort(key=lambda e: (-e["value"], e["epoch"]))
        for gone in self.best[self.keep_best:]:
            if self.writes:
                shutil.rmtree(self.run.root / gone["path"], ignore_errors=True)
        del self.best[self.keep_best:]
        if self.writes:
            point_link(self.run.best, self.run.root / self.best[0]["path"])
        return True
