"""Distributed data parallel: process-group setup from ``torchrun``'s environment, and gathering across processes.

Launch with ``torchrun --nproc_per_node N $(which msqnet) train CONFIG`` (or ``python -m
torch.distributed.run ...``): every process reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``,
joins a gloo (CPU) or NCCL (CUDA) group and trains a shard of each batch. Without those variables
everything runs in one process and these helpers are no-ops.
"""
from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..hardware import parse_device

__all__ = [
    "DistInfo",
    "init_distributed",
    "shutdown_distributed",
    "resolve_device",
    "is_distributed",
    "is_main_process",
    "barrier",
    "all_gather_objects",
    "broadcast_object",
    "all_reduce_sum",
    "rank_and_world_size",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, its ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> this process's CUDA device when there is one, else CPU; ``cuda`` -> ``cuda:<local rank>``.

    ``name`` is checked by :func:`msqnet.hardware.parse_device` (a ValueError for anything else)."""
    name = parse_device(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: CUDA is not available on this machine (use device=cpu)")
    return torch.device(name)


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group ``torchrun`` set up (gloo on CPU, NCCL on CUDA), or run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
        log.debug("rank %d/%d joined the %s process group on %s", rank, world_size, backend, dev)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def shutdown_distributed() -> None:
    """Leave the process group (if any)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """Whether a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process() -> bool:
    """Whether this process is rank 0 (or runs alone): the one that writes files and logs."""
    return not is_distributed() or dist.get_rank() == 0


def rank_and_world_size() -> tuple[int, int]:
    """This process's rank and the number of processes: ``(0, 1)`` alone."""
    return (dist.get_rank(), dist.get_world_size()) if is_distributed() else (0, 1)


def barrier() -> None:
    """Wait for every process (no-op alone)."""
    if is_distributed():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj`` (picklable), in rank order; ``[obj]`` alone."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_sum(value: float) -> float:
    """Sum of a number over every process."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t.item())
