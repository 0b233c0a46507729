"""The LightningDataModules: one base serves every dataset's loaders and held-out images."""
import abc
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ogan_pl.data.convert import to_model_range
from ogan_pl.data.image_folder import ImageFolderDataset, drop_unreadable, list_images
from ogan_pl.data.shapes import ShapesDataset
from ogan_pl.errors import UserError


class ImageDataModule(pl.LightningDataModule, abc.ABC):
    """Yields dict batches with a uint8 "image"; converts it to [-1, 1] once on the device.

    batch_size is per device (per process under DDP). With train.n_critic = k > 1 the loader
    yields k * batch_size images per step, one slice of batch_size for each E update.
    """

    def __init__(self, resolution: int, channels: int = 3, batch_size: int = 64, num_workers: int = 0,
                 pin_memory: bool = True, persistent_workers: bool = True, holdout_size: int = 256,
                 batches_per_step: int = 1, seed: int = 0):
        super().__init__()
        self.resolution = resolution
        self.channels = channels
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.holdout_size = holdout_size
        self.batches_per_step = batches_per_step
        self.seed = seed
        self.train_set: Dataset | None = None
        self.holdout_set: Dataset | None = None

    @abc.abstractmethod
    def build(self) -> tuple[Dataset, Dataset]:
        """Return (training set, held-out set) of dict items with a uint8 (C, R, R) "image"."""

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.holdout_set = self.build()
            step_images = self.batch_size * self.batches_per_step
            if len(self.train_set) < step_images:
                raise UserError(f"the dataset has {len(self.train_set)} training images, fewer than one "
                                f"step's {step_images}; lower dataset.batch_size or add images")

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool, drop_last: bool) -> DataLoader:
        return DataLoader(
            dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers and self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size * self.batches_per_step, shuffle=True, drop_last=True)

    def holdout_dataloader(self, batch_size: int | None = None) -> DataLoader:
        return self._loader(self.holdout_set, batch_size or self.batch_size, shuffle=False, drop_last=False)

    def identity(self) -> dict:
        """Everything the training images' pixels depend on (the key of cached real statistics)."""
        return {"class": type(self).__name__, "resolution": self.resolution, "channels": self.channels,
                "seed": self.seed}

    def real_dataloader(self, n: int | None = None, batch_size: int | None = None) -> DataLoader:
        """The first n training images (all when n is None) in a fixed order: the FID reference set."""
        self.setup()
        n = len(self.train_set) if n is None else min(n, len(self.train_set))
        return self._loader(Subset(self.train_set, range(n)), batch_size or self.batch_size,
                            shuffle=False, drop_last=False)

    def holdout_batch(self, n: int, offset: int = 0) -> dict:
        """The first n held-out items from `offset` (fixed across calls), images in [-1, 1] on CPU."""
        self.setup()
        n = min(n, len(self.holdout_set) - offset)
        if n <= 0:
            raise UserError(f"the held-out split has only {len(self.holdout_set)} images; "
                            "raise dataset.holdout_size")
        items = [self.holdout_set[i] for i in range(offset, offset + n)]
        batch = torch.utils.data.default_collate(items)
        batch["image"] = to_model_range(batch["image"])
        return batch

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        batch["image"] = to_model_range(batch["image"])
        return batch


class ShapesDataModule(ImageDataModule):
    """dataset=shapes: generated in memory, nothing on disk (see ogan_pl.data.shapes)."""

    def __init__(self, size: int = 20000, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def build(self):
        make = lambda n, split: ShapesDataset(n, self.resolution, self.channels, self.seed, split)  # noqa: E731
        return make(self.size, "train"), make(self.holdout_size, "holdout")


class ImageFolderDataModule(ImageDataModule):
    """dataset=image_folder dataset.root=DIR: every image under DIR; a fixed random held-out split."""

    def __init__(self, root: str, **kwargs):
        super().__init__(**kwargs)
        self.root = root

    def identity(self) -> dict:
        # the held-out split is drawn from the same files, so its size changes the training set
        return {**super().identity(), "root": str(Path(self.root).resolve()), "holdout_size": self.holdout_size}

    def build(self):
        files = drop_unreadable(list_images(self.root))
        order = np.random.default_rng(self.seed).permutation(len(files))
        n_holdout = min(self.holdout_size, max(1, len(files) // 10))
        dataset = ImageFolderDataset(files, self.resolution, self.channels)
        return Subset(dataset, order[n_holdout:].tolist()), Subset(dataset, order[:n_holdout].tolist())
