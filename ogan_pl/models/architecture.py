"""An architecture: the E and G of one O-GAN, built from one registered config node (`model=`).

Every architecture takes the image shape (resolution, channels, from the dataset) and the code
size z_dim (E's output = G's input); the rest of its arguments are its own. Its constructor checks
them (cheap, before any network exists), so a bad width is one line before anything heavy starts.
"""

import abc

from torch import nn

from ogan_pl.registry.values import at_least

#: the code's length: rho needs at least two entries
ZDim = at_least(2, "rho needs at least two entries")


class Architecture(abc.ABC):
    def __init__(self, resolution: int, channels: int, z_dim: ZDim):
        self.resolution = resolution
        self.channels = channels
        self.z_dim = z_dim

    @abc.abstractmethod
    def encoder(self) -> nn.Module:
        """E: images (B, channels, R, R) in [-1, 1] -> codes (B, z_dim)."""

    @abc.abstractmethod
    def generator(self) -> nn.Module:
        """G: noise or codes (B, z_dim) -> images (B, channels, R, R) in [-1, 1]."""
