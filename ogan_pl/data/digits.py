"""dataset=digits: 10,000 real MNIST digits that ship with ogan_pl (data/assets/mnist_10k.npz),
with their labels, so a fresh machine trains and measures on real images without any download.

The digits are 28x28; they are padded to 32x32 (2 px of background on each side, as LeNet's
input) and resized from there for other resolutions. The held-out split is fixed (a permutation
with a constant seed, independent of the run's seed), so runs with different seeds are scored on
the same held-out digits, and the split is stratified (the same share of every class).
"""

import copy
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from ogan_pl.data.arrays import ArrayImages
from ogan_pl.data.datamodule import Channels, ImageDataModule, Resolution, Workers, images_to_resolution
from ogan_pl.registry.registries import DATASETS
from ogan_pl.utils.errors import UserError

DIGITS_FILE = Path(__file__).with_name("assets") / "mnist_10k.npz"
SPLIT_SEED = 20190306  # fixed: the held-out digits are the same in every run


def load_digits(path: Path = DIGITS_FILE) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) from the shipped file (no pickle allowed)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data["images"], dtype=np.uint8), np.asarray(data["labels"], dtype=np.int64)
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"cannot read the built-in digits {path} ({err}); reinstall ogan_pl") from None


def stratified_split(labels: np.ndarray, holdout_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): held-out takes the same share of every class, in a fixed
    random order."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    share = holdout_size / len(labels)
    holdout = []
    for c in np.unique(labels):
        members = order[labels[order] == c]
        holdout.extend(members[: round(share * len(members))])
    held = np.zeros(len(labels), dtype=bool)
    held[np.asarray(holdout, dtype=np.int64)[:holdout_size]] = True
    for i in order:  # rounding per class can leave it a few short: top up in the same fixed order
        if held.sum() >= holdout_size:
            break
        held[i] = True
    return order[~held[order]], order[held[order]]


@DATASETS.register("digits")
class DigitsDataModule(ImageDataModule):
    """The built-in real digits; `train_size` keeps only the first N training digits (a small-data
    study); labels come with every item ("label") for the classifier-based metrics."""

    num_classes = 10

    def __init__(
        self,
        resolution: Resolution = 32,
        channels: Channels = 1,
        holdout_size: Annotated[
            int,
            Field(
                ge=10, le=5000, strict=True, description=("an integer from 10 to 5000 (of the 10,000 built-in digits)")
            ),
        ] = 1000,
        train_size: Annotated[
            int | None, Field(ge=1, strict=True, description=("a positive integer or null (all)"))
        ] = None,
        num_workers: Workers = 0,
        **kwargs,
    ):
        super().__init__(
            resolution=resolution, channels=channels, holdout_size=holdout_size, num_workers=num_workers, **kwargs
        )
        self.train_size = train_size

    def reference(self) -> "DigitsDataModule":
        """All 9,000 training digits, also when this run trains on `train_size` of them."""
        if self.train_size is None:
            return self
        if getattr(self, "_whole", None) is None:
            whole = copy.copy(self)
            whole.train_size, whole.train_set, whole.holdout_set = None, None, None
            self._whole = whole
        return self._whole

    def identity(self) -> dict:
        # the split does not depend on the run's seed: every run is measured on the same digits
        return {
            "class": type(self).__name__,
            "resolution": self.resolution,
            "channels": self.channels,
            "holdout_size": self.holdout_size,
            "train_size": self.train_size,
            "file": DIGITS_FILE.name,
        }

    def build(self):
        images, labels = load_digits()
        padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))  # 28 -> 32: background border, as LeNet
        data = images_to_resolution(torch.from_numpy(padded), self.resolution, self.channels)
        train, holdout = stratified_split(labels, self.holdout_size, SPLIT_SEED)
        if self.train_size is not None:
            train = train[: self.train_size]
        extras = {"label": torch.from_numpy(labels)}
        return ArrayImages(data, train, extras), ArrayImages(data, holdout, extras)
