"""ogan_pl: O-GAN (Su, 2019) in PyTorch Lightning + Hydra. One training run gives G and E."""
from ogan_pl import _moved
from ogan_pl.module import OGAN

_moved.install()  # old module names (before the regrouping) keep importing

__all__ = ["OGAN"]
__version__ = "0.1.0"
