"""The O-GAN method in pure torch (no Lightning, no Hydra): docs/method.md in code."""

from ogan_pl.method.augment import Augment, DiffAugment
from ogan_pl.method.correlation import correlation, standardize
from ogan_pl.method.ema import EMA
from ogan_pl.method.head import HEADS, DiscriminatorHead
from ogan_pl.method.losses import FGHLoss, GANLoss, LossInputs

__all__ = [
    "EMA",
    "HEADS",
    "Augment",
    "DiffAugment",
    "DiscriminatorHead",
    "FGHLoss",
    "GANLoss",
    "LossInputs",
    "correlation",
    "standardize",
]
