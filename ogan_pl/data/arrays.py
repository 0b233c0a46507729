"""Datasets over uint8 arrays in memory or memory-mapped, fetched a whole batch at a time."""

import numpy as np
import torch
from torch.utils.data import Dataset


class ArrayImages(Dataset):
    """Items `{"image": (C, R, R) uint8, **extras}` from an (N, C, R, R) uint8 array or tensor.

    `indices` selects (and orders) a subset. `__getitems__` makes the DataLoader fetch a batch with
    one fancy-indexing read instead of one Python call per image: this is what lets a memory-mapped
    cache feed tens of thousands of images per second.
    """

    def __init__(self, images, indices=None, extras: dict[str, torch.Tensor] | None = None):
        self.images = images
        self.indices = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.extras = extras or {}

    def __len__(self) -> int:
        return len(self.indices)

    def _rows(self, rows) -> torch.Tensor:
        data = self.images[rows]
        if isinstance(data, torch.Tensor):
            return data
        # a single row of a read-only memmap is a read-only view: copy it; fancy indexing already copied
        return torch.from_numpy(data if data.flags.writeable and data.flags.c_contiguous else np.array(data))

    def __getitem__(self, i: int) -> dict:
        row = int(self.indices[i])
        return {"image": self._rows(row), **{k: v[row] for k, v in self.extras.items()}}

    def __getitems__(self, items: list[int]) -> dict:
        """The batch's items, in ascending storage order (sequential reads); the set is the sampler's."""
        rows = np.sort(self.indices[np.asarray(items, dtype=np.int64)])
        return {"image": self._rows(rows), **{k: v[torch.from_numpy(rows)] for k, v in self.extras.items()}}
