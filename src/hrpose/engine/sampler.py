"""The order training samples are drawn in: the same global batches for any number of
processes, and a resumed epoch that continues where it stopped."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from .distributed import World


class EpochSampler(Sampler[int]):
    """A shuffled order per epoch, drawn from (seed, epoch). Rank r takes positions r, r + W,
    ...; so global batch i (the rank batches i together) is the same set of samples for any
    number of processes with the same global batch. Only full global batches are used. A
    resumed epoch starts at `start_batch`."""

    def __init__(self, n: int, batch: int, world: World, seed: int) -> None:
        self.n, self.batch, self.world, self.seed = n, batch, world, seed
        self.batches = n // (batch * world.size)
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g)[: self.batches * self.batch * self.world.size]
        mine = order[self.world.rank :: self.world.size]
        return iter(mine[self.start_batch * self.batch :].tolist())

    def __len__(self) -> int:
        return (self.batches - self.start_batch) * self.batch
