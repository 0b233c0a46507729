"""The LightningDataModules: one base serves every dataset's loaders and held-out images."""

import abc
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from pydantic import Field
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from ogan_pl.data.arrays import ArrayImages
from ogan_pl.data.cache import cached_images, report_bad
from ogan_pl.data.convert import to_model_range
from ogan_pl.data.decode import Preprocess
from ogan_pl.data.order import IterationBatchSampler
from ogan_pl.data.raw_images import DecodedImages
from ogan_pl.data.shapes import ShapesDataset
from ogan_pl.data.sources import open_source
from ogan_pl.registry.registries import DATASETS
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.loaders import collate, worker_options
from ogan_pl.utils.seeds import Stream, rank_seed

# The dataset's values, declared once: the registry checks a config against these annotations.
Resolution = Annotated[int, Field(ge=8, strict=True, description="an integer >= 8 (e.g. 64)")]
Channels = Annotated[Literal[1, 3], Field(description="1 (grayscale) or 3 (RGB)")]
BatchSize = Annotated[int, Field(ge=2, strict=True, description="an integer >= 2 (BatchNorm needs a batch)")]
Workers = Annotated[int, Field(ge=0, strict=True, description="an integer >= 0")]
HoldoutSize = Annotated[int, Field(ge=1, strict=True, description="an integer >= 1")]


class ImageDataModule(pl.LightningDataModule, abc.ABC):
    """Yields dict batches with a uint8 "image"; converts it to [-1, 1] once on the device.

    batch_size is per device (per process under DDP). With train.n_critic = k > 1 the loader
    yields k * batch_size images per step, one slice of batch_size for each E update. A labelled
    dataset sets `num_classes` and gives each item an int64 "label" (the classifier metrics).
    """

    num_classes: int | None = None

    def __init__(
        self,
        resolution: Resolution,
        channels: Channels = 3,
        batch_size: BatchSize = 64,
        num_workers: Workers = 4,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        holdout_size: HoldoutSize = 256,
        batches_per_step: int = 1,
        seed: int = 0,
        flip: bool = False,
    ):
        super().__init__()
        self.flip = flip
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
                raise UserError(
                    f"the dataset has {len(self.train_set)} training images, fewer than one "
                    f"step's {step_images}; lower dataset.batch_size or add images"
                )

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool, drop_last: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            collate_fn=collate,
            **worker_options(self.num_workers, self.pin_memory, self.persistent_workers),
        )

    def _run_position(self) -> tuple[int, int, int, int]:
        """(run seed, generator iterations done, rank, world size) of the training this data serves."""
        trainer = self.trainer
        module = getattr(trainer, "lightning_module", None) if trainer is not None else None
        if module is None:
            return self.seed, 0, 0, 1
        return int(module.seed), int(module.g_iter), trainer.global_rank, trainer.world_size

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches whose order is a function of the generator iteration (ogan_pl.data.order):
        a resumed run continues with exactly the batches an uninterrupted one would see, and under
        DDP each rank takes its own part of each batch."""
        seed, _, rank, world_size = self._run_position()
        sampler = IterationBatchSampler(
            len(self.train_set),
            self.batch_size * self.batches_per_step,
            seed,
            start=lambda: self._run_position()[1],
            rank=rank,
            world_size=world_size,
        )
        return DataLoader(
            self.train_set,
            batch_sampler=sampler,
            collate_fn=collate,
            **worker_options(self.num_workers, self.pin_memory, self.persistent_workers),
        )

    def holdout_dataloader(self, batch_size: int | None = None) -> DataLoader:
        return self._loader(self.holdout_set, batch_size or self.batch_size, shuffle=False, drop_last=False)

    def identity(self) -> dict:
        """Everything the training images' pixels depend on (the key of cached real statistics)."""
        return {
            "class": type(self).__name__,
            "resolution": self.resolution,
            "channels": self.channels,
            "seed": self.seed,
        }

    def reference(self) -> "ImageDataModule":
        """The data the classifier metrics are measured against: this dataset, or for a part of one
        (a small-data study) the whole of it, so that every run is judged by the same classifier on
        the same real images."""
        return self

    def real_dataloader(self, n: int | None = None, batch_size: int | None = None) -> DataLoader:
        """The first n training images (all when n is None) in a fixed order: the FID reference set."""
        self.setup()
        n = len(self.train_set) if n is None else min(n, len(self.train_set))
        return self._loader(
            Subset(self.train_set, range(n)), batch_size or self.batch_size, shuffle=False, drop_last=False
        )

    def holdout_batch(self, n: int, offset: int = 0) -> dict:
        """The first n held-out items from `offset` (fixed across calls), images in [-1, 1] on CPU."""
        return self.first_batch("holdout", n, offset)

    def first_batch(self, split: str, n: int, offset: int = 0) -> dict:
        """Items offset..offset+n of a split ("train" or "holdout") in the split's order, collated;
        images in [-1, 1] on CPU."""
        self.setup()
        dataset = self.holdout_set if split == "holdout" else self.train_set
        n = min(n, len(dataset) - offset)
        if n <= 0:
            raise UserError(
                f"the {split} split has only {len(dataset)} images; raise dataset.holdout_size"
                if split == "holdout"
                else f"the {split} split has only {len(dataset)} images"
            )
        batch = default_collate([dataset[i] for i in range(offset, offset + n)])
        batch["image"] = to_model_range(batch["image"])
        return batch

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        images = to_model_range(batch["image"])
        if self.flip:  # random horizontal flip of half the batch, on the device, no host sync
            seed, g_iter, rank, _ = self._run_position()
            generator = torch.Generator(device=images.device).manual_seed(rank_seed(seed, rank, g_iter, Stream.FLIPS))
            mirror = torch.rand(len(images), 1, 1, 1, device=images.device, generator=generator) < 0.5
            images = torch.where(mirror, images.flip(-1), images)
        batch["image"] = images
        return batch


@DATASETS.register("shapes")
class ShapesDataModule(ImageDataModule):
    """dataset=shapes: generated in memory, nothing on disk (see ogan_pl.data.shapes); labelled by
    shape type (circle, square, triangle)."""

    num_classes = 3

    def __init__(self, size: int = 20000, holdout_size: HoldoutSize = 512, num_workers: Workers = 0, **kwargs):
        super().__init__(holdout_size=holdout_size, num_workers=num_workers, **kwargs)
        self.size = size

    def build(self):
        def make(n, split):
            return ShapesDataset(n, self.resolution, self.channels, self.seed, split)

        return make(self.size, "train"), make(self.holdout_size, "holdout")


@DATASETS.register("image_folder")
class ImageFolderDataModule(ImageDataModule):
    """dataset=image_folder dataset.root=DIR: every image under DIR (recursive), or the values of an
    LMDB when DIR is one; centre-cropped to a square (of side `crop_size`, capped at the smaller
    side; null = the smaller side) and resized. A fixed random held-out split.

    cache=true decodes every image once into a memory-mapped array under `cache_dir` (see
    ogan_pl.data.cache); cache=false decodes on the fly in the DataLoader workers. Undecodable
    images are skipped with one warning (`on_error=skip`) or stop the run (`on_error=raise`).
    The subclasses below are the standard datasets: their docstrings say how to get the data.
    """

    how_to_get = "pass dataset.root=DIR pointing at your images"
    subdirs: tuple[str, ...] = ()  # layouts to look for inside root, first match wins

    def __init__(
        self,
        root: str | None = None,
        crop_size: int | None = None,
        cache: bool = True,
        cache_dir: str = ".cache/ogan_pl",
        on_error: str = "skip",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if on_error not in ("skip", "raise"):
            raise UserError(f"dataset.on_error={on_error!r} must be 'skip' or 'raise'")
        if crop_size is not None and not (
            isinstance(crop_size, int) and not isinstance(crop_size, bool) and crop_size >= 1
        ):
            raise UserError(
                f"dataset.crop_size={crop_size!r} must be a positive number of pixels, or null for "
                "the smaller side of each image"
            )
        if root is not None and not str(root).strip():
            raise UserError(f"dataset.root is empty; {self.how_to_get}")
        self.root = root
        self.preprocess = Preprocess(self.resolution, self.channels, crop_size)
        self.cache = cache
        self.cache_dir = cache_dir
        self.on_error = on_error

    def data_root(self) -> Path:
        if self.root is None:
            raise UserError(f"dataset.root is not set: {self.how_to_get}")
        root = Path(self.root)
        if not root.exists():
            raise UserError(f"dataset.root={root} does not exist; {self.how_to_get}")
        return next((root / sub for sub in self.subdirs if (root / sub).is_dir()), root)

    def identity(self) -> dict:
        # the held-out split is drawn from the same images, so its size changes the training set
        return {
            **super().identity(),
            "root": str(self.data_root().resolve()),
            "holdout_size": self.holdout_size,
            "crop_size": self.preprocess.crop_size,
        }

    def build(self):
        source = open_source(self.data_root(), self.how_to_get)
        if self.cache:
            images = cached_images(source, self.preprocess, self.cache_dir, self.on_error)
            n = len(images)

            def make(idx):
                return ArrayImages(images, idx)
        else:
            ok = [source.header_ok(i) for i in range(len(source))]
            readable = [i for i, good in enumerate(ok) if good]
            unreadable = [source.name(i) for i, good in enumerate(ok) if not good]
            if self.on_error == "raise" and unreadable:
                raise UserError(f"cannot read {unreadable[0]}; fix or remove it, or set dataset.on_error=skip")
            report_bad(unreadable, len(source))
            if not readable:
                raise UserError(f"none of the {len(source)} images under {self.data_root()} can be read")
            n = len(readable)

            def make(idx):
                return DecodedImages(source, self.preprocess, [readable[i] for i in idx], self.on_error)

        order = np.random.default_rng(self.seed).permutation(n)
        n_holdout = min(self.holdout_size, max(1, n // 10))
        return make(order[n_holdout:]), make(order[:n_holdout])


@DATASETS.register("lsun")
class LSUNDataModule(ImageFolderDataModule):
    """dataset=lsun_church / lsun_bedroom: LSUN as distributed, an LMDB directory
    (`church_outdoor_train_lmdb/`, `bedroom_train_lmdb/`) of webp/jpeg values, or a folder of
    exported images. Get it with LSUN's download script (github.com/fyu/lsun:
    `python download.py -c church_outdoor`) and unzip it under data/lsun/. Preprocessing as the
    reference: centre crop of side 256 (or the smaller side), then resize."""

    how_to_get = (
        "download LSUN with github.com/fyu/lsun (python download.py -c church_outdoor, or -c bedroom), "
        "unzip it and pass dataset.root=.../church_outdoor_train_lmdb"
    )


@DATASETS.register("celeba_hq")
class CelebAHQDataModule(ImageFolderDataModule):
    """dataset=celeba_hq: the 30,000 CelebA-HQ images as a folder (any resolution, e.g. the
    1024x1024 PNGs or the Kaggle 256x256 JPEGs), resized."""

    how_to_get = (
        "put the CelebA-HQ images (e.g. from github.com/tkarras/progressive_growing_of_gans or the "
        "Kaggle 'celebahq' mirrors) in a folder and pass dataset.root=DIR"
    )


@DATASETS.register("ffhq")
class FFHQDataModule(ImageFolderDataModule):
    """dataset=ffhq: the 70,000 FFHQ images as a folder (images1024x1024/ or thumbnails128x128/
    from github.com/NVlabs/ffhq-dataset), resized."""

    how_to_get = (
        "download FFHQ with github.com/NVlabs/ffhq-dataset (python download_ffhq.py --images or "
        "--thumbs) and pass dataset.root=.../images1024x1024"
    )


@DATASETS.register("celeba")
class CelebADataModule(ImageFolderDataModule):
    """dataset=celeba: aligned CelebA (`img_align_celeba/`, 178x218 JPEGs) with the usual 140x140
    centre crop, then resize. `dataset.root` may be that folder, its parent, or torchvision's
    CelebA root (`ROOT/celeba/img_align_celeba`). Get img_align_celeba.zip from
    mmlab.ie.cuhk.edu.hk/projects/CelebA.html."""

    how_to_get = (
        "download img_align_celeba.zip from mmlab.ie.cuhk.edu.hk/projects/CelebA.html, unzip it and "
        "pass dataset.root=.../img_align_celeba"
    )
    subdirs = ("img_align_celeba", "celeba/img_align_celeba")


class TorchvisionDataModule(ImageDataModule):
    """A torchvision dataset: the training split for training, the official test split as the
    held-out split (its first `holdout_size` images). Downloaded into `root` when `download=true`
    and a network exists; otherwise the files must already be there."""

    torchvision_class = ""  # the torchvision.datasets class of a subclass
    num_classes = 10

    def __init__(self, root: str, download: bool = True, resolution: Resolution = 32, **kwargs):
        super().__init__(resolution=resolution, **kwargs)
        self.root, self.download = root, download

    def identity(self) -> dict:
        return {**super().identity(), "name": self.torchvision_class}

    def _split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        import torchvision.datasets  # lazy: its dataset classes load slowly, and only these modules use them

        cls = getattr(torchvision.datasets, self.torchvision_class)
        try:
            split = cls(self.root, train=train, download=self.download)
        except (RuntimeError, OSError) as err:  # offline and absent: "Dataset not found", or a URLError
            raise UserError(
                f"{self.torchvision_class} not found under dataset.root={self.root} and not downloadable "
                f"({str(err).splitlines()[0][:120]}); run once with network (dataset.download=true) "
                f"or copy torchvision's {self.torchvision_class} files into {self.root}"
            ) from None
        images = images_to_resolution(torch.as_tensor(split.data), self.resolution, self.channels)
        return images, torch.as_tensor(split.targets, dtype=torch.int64)

    def build(self):
        (train, train_labels), (test, test_labels) = self._split(True), self._split(False)
        return (
            ArrayImages(train, extras={"label": train_labels}),
            ArrayImages(test[: self.holdout_size], extras={"label": test_labels[: self.holdout_size]}),
        )


@DATASETS.register("cifar10")
class CIFAR10DataModule(TorchvisionDataModule):
    """dataset=cifar10: CIFAR-10 through torchvision (50,000 training, 10,000 test images)."""

    torchvision_class = "CIFAR10"


@DATASETS.register("mnist")
class MNISTDataModule(TorchvisionDataModule):
    """dataset=mnist: the full MNIST through torchvision (60,000 training, 10,000 test digits)."""

    torchvision_class = "MNIST"

    def __init__(self, channels: Channels = 1, **kwargs):
        super().__init__(channels=channels, **kwargs)


def images_to_resolution(data: torch.Tensor, resolution: int, channels: int, chunk: int = 4096) -> torch.Tensor:
    """(N, H, W) or (N, H, W, C) uint8 -> (N, channels, R, R) uint8, bicubic antialiased, vectorised."""
    data = data.unsqueeze(-1) if data.dim() == 3 else data
    data = data.permute(0, 3, 1, 2)
    if data.shape[1] == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        data = (data.float() * weights).sum(1, keepdim=True).round().to(torch.uint8)
    elif data.shape[1] == 1 and channels == 3:
        data = data.expand(-1, 3, -1, -1)
    if data.shape[-1] == resolution and data.shape[-2] == resolution:
        return data.contiguous()
    out = [
        torch.nn.functional.interpolate(
            data[i : i + chunk].float(),
            size=(resolution, resolution),
            mode="bicubic",
            antialias=True,
            align_corners=False,
        )
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
        for i in range(0, len(data), chunk)
    ]
    return torch.cat(out)
