"""The order of the training images as a function of the generator iteration, so that a resumed
run sees exactly the batches an uninterrupted one would have seen.

Batch b of a run (b = generator iterations done: one batch per iteration) is batch b mod B of epoch
b div B, where B batches make an epoch; epoch e is a permutation of the images drawn from
(seed, e) alone. Under DDP every rank takes its own slice of each global batch. The sampler asks
where the run is (`start()`, the model's iteration counter) whenever a pass over the data begins,
so nothing about the order has to be stored in a checkpoint: the counter that is already there
decides it, whatever the number of DataLoader workers and however far they prefetched.
"""

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler

from ogan_pl.utils.seeds import Stream, rank_seed


class IterationBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        n_items: int,
        batch_size: int,
        seed: int,
        start: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if n_items < batch_size * world_size:
            raise ValueError(f"{n_items} items cannot fill one batch of {batch_size} on {world_size} rank(s)")
        self.n_items, self.batch_size, self.seed = n_items, batch_size, seed
        self.start, self.rank, self.world_size = start, rank, world_size

    def __len__(self) -> int:
        """Batches per epoch (per rank); the images that do not fill a whole global batch wait for the
        next epoch's permutation (drop_last)."""
        return self.n_items // (self.batch_size * self.world_size)

    def epoch_batches(self, epoch: int) -> torch.Tensor:
        """(batches, world_size, batch_size) indices of one epoch."""
        generator = torch.Generator().manual_seed(rank_seed(self.seed, 0, epoch, Stream.ORDER))
        order = torch.randperm(self.n_items, generator=generator)
        per_epoch = len(self)
        return order[: per_epoch * self.world_size * self.batch_size].view(per_epoch, self.world_size, self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        epoch, position = divmod(int(self.start()), len(self))
        batches = self.epoch_batches(epoch)[:, self.rank]
        for b in range(position, len(batches)):
            yield batches[b].tolist()
