"""The reference DCGAN encoder E and generator G (docs/method.md, "Reference architectures").

Resolution R, n = log2(R) - 3, C = bottom channels (8R in the reference). E has n+1 stride-2
convolutions with C / 2^(n-i) channels; G mirrors it from a 4x4xC tensor. Padding reproduces
Keras' 'same' output sizes for any kernel size.
"""

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ogan_pl.models.architecture import Architecture, ZDim
from ogan_pl.registry.registries import ARCHITECTURES
from ogan_pl.registry.values import at_least
from ogan_pl.utils.errors import UserError


def num_layers(resolution: int) -> int:
    """n = log2(R) - 3: the number of halvings between R and the 4x4 bottom, minus one."""
    n = math.log2(resolution) - 3
    if resolution < 8 or not n.is_integer():
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    return int(n)


def bottom_width(resolution: int, bottom_channels: int | None) -> int:
    return 8 * resolution if bottom_channels is None else bottom_channels


def init_weights(module: nn.Module, std: float) -> None:
    """All conv/linear weights ~ N(0, std), biases zero (the reference's RandomNormal(0, 0.02))."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Encoder(nn.Module):
    """E: image in [-1, 1] -> code in R^z_dim. Also the discriminator, through a head on the code."""

    def __init__(
        self,
        resolution: int = 128,
        channels: int = 3,
        z_dim: int = 128,
        bottom_channels: int | None = None,
        kernel_size: int = 5,
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
        init_std: float = 0.02,
    ):
        super().__init__()
        n = num_layers(resolution)
        width = bottom_width(resolution, bottom_channels)
        layers: list[nn.Module] = []
        in_ch = channels
        for i in range(n + 1):
            out_ch = width // 2 ** (n - i)
            layers.append(nn.Conv2d(in_ch, out_ch, kernel_size, stride=2, padding=(kernel_size - 1) // 2))
            if i > 0:
                layers.append(nn.BatchNorm2d(out_ch, eps=bn_eps, momentum=bn_momentum))
            layers.append(nn.LeakyReLU(0.2))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(width * 4 * 4, z_dim)
        self.z_dim = z_dim
        init_weights(self, init_std)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).flatten(1))


class SelfModulatedBatchNorm2d(nn.Module):
    """BatchNorm without affine, then h * (gamma(z) + 1) + beta(z) (the reference's "sm" variant)."""

    def __init__(self, channels: int, z_dim: int, eps: float, momentum: float):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, affine=False)
        self.gamma = nn.Sequential(nn.Linear(z_dim, z_dim), nn.ReLU(), nn.Linear(z_dim, channels))
        self.beta = nn.Sequential(nn.Linear(z_dim, z_dim), nn.ReLU(), nn.Linear(z_dim, channels))

    def forward(self, h: Tensor, z: Tensor) -> Tensor:
        gamma = self.gamma(z)[:, :, None, None]
        beta = self.beta(z)[:, :, None, None]
        return self.norm(h) * (gamma + 1) + beta


class Generator(nn.Module):
    """G: z in R^z_dim -> image in [-1, 1]."""

    def __init__(
        self,
        resolution: int = 128,
        channels: int = 3,
        z_dim: int = 128,
        bottom_channels: int | None = None,
        kernel_size: int = 5,
        self_modulated: bool = False,
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
        init_std: float = 0.02,
    ):
        super().__init__()
        n = num_layers(resolution)
        width = bottom_width(resolution, bottom_channels)
        pad = (kernel_size - 1) // 2
        out_pad = 2 * pad + 2 - kernel_size  # makes every transposed conv exactly double the size

        def up(in_ch: int, out_ch: int) -> nn.ConvTranspose2d:
            return nn.ConvTranspose2d(in_ch, out_ch, kernel_size, stride=2, padding=pad, output_padding=out_pad)

        def norm(ch: int) -> nn.Module:
            if self_modulated:
                return SelfModulatedBatchNorm2d(ch, z_dim, eps=bn_eps, momentum=bn_momentum)
            return nn.BatchNorm2d(ch, eps=bn_eps, momentum=bn_momentum)

        self.self_modulated = self_modulated
        self.width = width
        self.z_dim = z_dim
        self.fc = nn.Linear(z_dim, 4 * 4 * width)
        self.norms = nn.ModuleList([norm(width)])
        self.ups = nn.ModuleList()
        for i in range(n):
            self.ups.append(up(width // 2**i, width // 2 ** (i + 1)))
            self.norms.append(norm(width // 2 ** (i + 1)))
        self.to_image = up(width // 2**n, channels)
        init_weights(self, init_std)

    def _norm_relu(self, i: int, h: Tensor, z: Tensor) -> Tensor:
        h = self.norms[i](h, z) if self.self_modulated else self.norms[i](h)
        return F.relu(h)

    def forward(self, z: Tensor) -> Tensor:
        h = self._norm_relu(0, self.fc(z).view(-1, self.width, 4, 4), z)
        for i, up in enumerate(self.ups, start=1):
            h = self._norm_relu(i, up(h), z)
        return torch.tanh(self.to_image(h))


@ARCHITECTURES.register("dcgan")
class DCGAN(Architecture):
    """model=dcgan: the reference's E and G; model=dcgan_sm: 4x4 kernels and a self-modulated G."""

    def __init__(
        self,
        resolution: int,
        channels: int,
        z_dim: ZDim = 128,
        bottom_channels: int | None = None,
        kernel_size: at_least(3) = 5,
        self_modulated: bool = False,
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
        init_std: float = 0.02,
    ):
        super().__init__(resolution, channels, z_dim)
        if not (isinstance(resolution, int) and 32 <= resolution <= 512 and math.log2(resolution).is_integer()):
            raise UserError(
                f"dataset.resolution={resolution} must be a power of two from 32 to 512 for model=dcgan "
                "(e.g. dataset.resolution=64)"
            )
        n = num_layers(resolution)
        if bottom_channels is not None and not (
            isinstance(bottom_channels, int) and bottom_channels >= 2**n and bottom_channels % 2**n == 0
        ):
            raise UserError(
                f"model.bottom_channels={bottom_channels!r} must be an integer divisible by 2^{n} at "
                f"resolution {resolution} (or null for the reference's 8 * resolution)"
            )
        self.kwargs = {
            "resolution": resolution,
            "channels": channels,
            "z_dim": z_dim,
            "bottom_channels": bottom_channels,
            "kernel_size": kernel_size,
            "bn_momentum": bn_momentum,
            "bn_eps": bn_eps,
            "init_std": init_std,
        }
        self.self_modulated = self_modulated

    def encoder(self) -> Encoder:
        return Encoder(**self.kwargs)

    def generator(self) -> Generator:
        return Generator(**self.kwargs, self_modulated=self.self_modulated)
