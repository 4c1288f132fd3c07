"""The one data-loading path of training and evaluation: a resumable, sharded sampler and its DataLoader.

``ClipSampler`` decides which clips each process reads in an epoch and in what order: a fresh
random draw per epoch for training (optionally ``clips_per_epoch`` of them), annotation order for
evaluation; sharded over DDP processes, and resumable mid-epoch. It yields ``(epoch, index)``, so
every clip's augmentation is that of its epoch even in persistent workers (see ``ClipDataset``).
``build_loader`` wraps it in a DataLoader with seeded workers (``seed_worker``) and the dataset's
skip-aware collate function.
"""
from __future__ import annotations

import random
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .dataset import collate_clips

__all__ = ["ClipSampler", "seed_worker", "build_loader"]


class ClipSampler(Sampler):
    """Which clips a process reads in an epoch, in order: shuffled or not, sharded, resumable mid-epoch.

    With ``shuffle``, epoch ``e``'s order is a permutation drawn from ``(seed, e)``; with
    ``clips_per_epoch`` it is the first ``clips_per_epoch`` of as many concatenated permutations as
    needed (the reference's "epochs" of 2,500 random clips; no clip repeats within an epoch unless
    the epoch is longer than the split). Without ``shuffle`` it is annotation order. The order is
    padded by repeating its start to a multiple of ``world_size`` (so every process reads as many
    clips, as ``DistributedSampler`` pads) and process ``r`` takes positions ``r, r + W, ...``.
    ``set_epoch(e, skip=k)`` starts the next pass at this process's ``k``-th clip: a resumed run
    continues with exactly the clips the interrupted one had not consumed.

    Args:
        num_records: size of the split.
        seed: base seed of the order.
        shuffle: a random order per epoch (training), else annotation order (evaluation).
        clips_per_epoch: clips per epoch over all processes; ``None`` = the whole split.
        rank: this process.
        world_size: number of processes.
    """

    def __init__(self, num_records: int, *, seed: int = 0, shuffle: bool = True, clips_per_epoch: int | None = None,
                 rank: int = 0, world_size: int = 1):
        if num_records < 1:
            raise ValueError("the split is empty")
        self.num_records = num_records
        self.seed = seed
        self.shuffle = shuffle
        self.clips_per_epoch = clips_per_epoch
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.skip = 0

    @property
    def epoch_size(self) -> int:
        """Clips per epoch over all processes, before padding."""
        return self.clips_per_epoch or self.num_records

    def __len__(self) -> int:
        """Clips this process reads per epoch (equal on every process)."""
        return -(-self.epoch_size // self.world_size)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Read epoch ``epoch``'s order next, starting at this process's ``skip``-th clip."""
        self.epoch = epoch
        self.skip = skip

    def order(self, epoch: int) -> list[int]:
        """All processes' clip order of ``epoch`` before sharding (``epoch_size`` indices)."""
        if not self.shuffle:
            rounds = -(-self.epoch_size // self.num_records)
            return (list(range(self.num_records)) * rounds)[: self.epoch_size]
        seq = np.random.SeedSequence([self.seed, epoch])
        g = torch.Generator().manual_seed(int(seq.generate_state(1, dtype=np.uint64)[0]))
        chunks: list[int] = []
        while len(chunks) < self.epoch_size:
            chunks += torch.randperm(self.num_records, generator=g).tolist()
        return chunks[: self.epoch_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.order(self.epoch)
        total = len(self) * self.world_size
        order = (order * (1 + total // len(order)))[:total]  # pad so every process gets the same count
        mine = order[self.rank :: self.world_size][self.skip :]
        return iter([(self.epoch, i) for i in mine])


def seed_worker(worker_id: int) -> None:
    """Seed a loader worker's global RNGs (for any code that uses them) and keep it single-threaded."""
    info = torch.utils.data.get_worker_info()
    seed = info.seed % 2**32 if info is not None else worker_id
    random.seed(seed)
    np.random.seed(seed)
    # Workers already run in parallel; intra-op threads in each would oversubscribe the cores.
    torch.set_num_threads(1)


def build_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    num_workers: int,
    sampler: ClipSampler,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset`` in ``sampler``'s order, with seeded persistent workers and the
    dataset's skip-aware collate function (``collate_clips`` unless the dataset has its own).

    ``generator`` draws the workers' base seed (and through ``seed_worker`` their global RNGs); a
    training run keeps it in its checkpoints. ``None`` = a generator seeded with ``sampler.seed``.
    Call ``loader.sampler.set_epoch(e)`` before each epoch.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=getattr(dataset, "collate", collate_clips),  # datasets that shape their own batches say how
        drop_last=drop_last,
        worker_init_fn=seed_worker if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        generator=generator if generator is not None else torch.Generator().manual_seed(sampler.seed),
    )
