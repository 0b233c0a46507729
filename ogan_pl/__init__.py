"""ogan_pl: O-GAN (Su, 2019) in PyTorch Lightning + Hydra. One training run gives G and E."""

from ogan_pl.module import OGAN

__all__ = ["OGAN"]
__version__ = "0.2.0"
