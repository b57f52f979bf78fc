"""The order in which training visits the photos: seeded, sharded across processes, resumable.

:func:`repair.train.fit` draws its batches through :func:`make_train_loader`; epoch ``e`` always
visits the same photos in the same order, so a run resumed mid-epoch continues exactly.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["EpochSampler", "make_train_loader", "ignore_ctrl_c"]


class EpochSampler(Sampler[int]):
    """A seeded shuffle per epoch, sharded across processes, that can start mid-epoch.

    Epoch ``e`` visits ``randperm(n, seed=(seed, e))``; process ``rank`` of ``world`` takes every
    ``world``-th index (padded so all processes get the same count); ``skip`` drops the first
    indices of this process (resuming after ``skip / batch_size`` batches). With ``epoch_size``
    an epoch visits only the first ``epoch_size`` indices of its permutation: a fresh random
    subset of the data every epoch (shorter epochs, so more validations for the same images).
    """

    def __init__(self, n: int, seed: int = 0, rank: int = 0, world: int = 1,
                 epoch_size: int | None = None) -> None:
        if epoch_size is not None and epoch_size < 1:
            raise ValueError(f"epoch_size must be a positive number of items, got {epoch_size}")
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.size = n if epoch_size is None else min(n, epoch_size)  # items per epoch
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Visit epoch ``epoch`` next, leaving out this process's first ``skip`` indices."""
        self.epoch, self.skip = epoch, skip

    def _indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()[:self.size]
        per_rank = math.ceil(self.size / self.world)
        order += order[:per_rank * self.world - self.size]   # pad to a multiple of world
        return order[self.rank::self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices()[self.skip:])

    def __len__(self) -> int:
        return max(0, math.ceil(self.size / self.world) - self.skip)


def make_train_loader(dataset: Dataset, batch_size: int, num_workers: int = 0, seed: int = 0,
                      rank: int = 0, world: int = 1, epoch_size: int | None = None) -> DataLoader:
    """A loader whose order is :class:`EpochSampler`'s (call ``loader.sampler.set_epoch``)."""
    sampler = EpochSampler(len(dataset), seed, rank, world, epoch_size)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      drop_last=False, persistent_workers=False,
                      worker_init_fn=ignore_ctrl_c if num_workers else None)


def ignore_ctrl_c(worker_id: int | None = None) -> None:
    """``worker_init_fn`` of the training loader: a data-loading worker ignores Ctrl-C.

    A Ctrl-C in a terminal reaches every process of the run, the workers too. The main process
    decides what it means (``repair train`` finishes the step, saves ``last.pt`` and shuts the
    workers down; a second Ctrl-C quits); a worker that acted on it by itself would either die
    under the step being finished or, forked with the main process's handler, announce the stop
    once more per worker.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
