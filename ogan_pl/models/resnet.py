"""Residual E and G in the style of SNGAN / BigGAN (Miyato et al. 2018, Brock et al. 2019).

G: Linear z -> 4x4 x C_0, then one up-sampling residual block per doubling up to R, then
BatchNorm, ReLU, conv3x3, tanh. E mirrors it: one down-sampling residual block per halving down to
4x4, ReLU, a mean over positions (`pooling=sum` is SNGAN's), Linear to the O-GAN code of z_dim
entries; the discriminator is still the head on that code (avg or linear, `ogan.disc_head`).

Why the mean: rho is blind to the code's scale, so its gradient shrinks as 1 / |code| while the
adversarial term's does not, and under RMSprop the code's scale acts as a weight on the correlation
term. Summed over the 16 positions the code is 16x larger and the term is drowned: rho stays at
0.01 instead of 0.19 after 300 iterations on the digits (docs/results.md, "What the code's scale does").

Widths: G has width * min(16, 2^(U - i)) channels at 4x4 * 2^i, U = log2(R / 4), so width=64
gives 512, 256, 128, 64 at 32x32 and BigGAN's 1024, 1024, 512, 256, 128, 64 at 128x128; E's
blocks have width * min(16, 2^k) after the k-th halving (64 ... 1024 at 128x128, BigGAN's D
without its extra 4x4 block).

Spectral norm is torch's hook-based `spectral_norm` (weight_orig, u, v in the state dict): unlike
the parametrization API it pickles, which `trainer.strategy=ddp_spawn` needs. It bounds E only:
the linear head (`ogan.disc_head=linear`) is not normalised, and the EMA copy of E averages
weight_orig and copies u and v.
"""

import itertools
import math

from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm as add_spectral_norm

from ogan_pl.models.architecture import Architecture, ZDim
from ogan_pl.models.dcgan import SelfModulatedBatchNorm2d
from ogan_pl.registry.registries import ARCHITECTURES
from ogan_pl.registry.values import at_least, one_of
from ogan_pl.utils.errors import UserError

MAX_MULTIPLIER = 16
E_NORMS = ("none", "batch")
POOLINGS = ("sum", "mean")


def level_widths(resolution: int, width: int) -> list[int]:
    """Channels at 4x4, 8x8, ..., R x R."""
    ups = int(math.log2(resolution // 4))
    return [width * min(MAX_MULTIPLIER, 2 ** (ups - i)) for i in range(ups + 1)]


def encoder_widths(resolution: int, width: int) -> list[int]:
    """Channels after each of E's blocks (R/2 ... 4x4): width * min(16, 2^k), as BigGAN's D."""
    return [width * min(MAX_MULTIPLIER, 2**k) for k in range(int(math.log2(resolution // 4)))]


def xavier(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """Xavier-uniform weight, zero bias (SNGAN: gain sqrt(2) in residual branches, 1 elsewhere)."""
    nn.init.xavier_uniform_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return xavier(nn.Conv2d(in_ch, out_ch, 3, padding=1), math.sqrt(2))


def conv1x1(in_ch: int, out_ch: int) -> nn.Conv2d:
    return xavier(nn.Conv2d(in_ch, out_ch, 1))


class GBlock(nn.Module):
    """norm, ReLU, 2x nearest up-sampling, conv3x3, norm, ReLU, conv3x3; plus a conv1x1 shortcut,
    up-sampled after the conv (the same as before it, at a quarter of the cost)."""

    def __init__(self, in_ch: int, out_ch: int, z_dim: int, self_modulated: bool, bn_momentum: float, bn_eps: float):
        super().__init__()

        def norm(ch: int) -> nn.Module:
            if self_modulated:
                return SelfModulatedBatchNorm2d(ch, z_dim, eps=bn_eps, momentum=bn_momentum)
            return nn.BatchNorm2d(ch, eps=bn_eps, momentum=bn_momentum)

        self.self_modulated = self_modulated
        self.norm1, self.norm2 = norm(in_ch), norm(out_ch)
        self.conv1, self.conv2, self.shortcut = conv3x3(in_ch, out_ch), conv3x3(out_ch, out_ch), conv1x1(in_ch, out_ch)

    def _norm(self, norm: nn.Module, h: Tensor, z: Tensor) -> Tensor:
        return norm(h, z) if self.self_modulated else norm(h)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self._norm(self.norm1, x, z)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self._norm(self.norm2, self.conv1(h), z)))
        return h + F.interpolate(self.shortcut(x), scale_factor=2.0, mode="nearest")


class DBlock(nn.Module):
    """(ReLU), conv3x3, (norm), ReLU, conv3x3, (norm), 2x2 average pooling; plus a conv1x1 shortcut,
    pooled before the conv (the same as after it, at a quarter of the cost).

    The first block of E (`first=True`, SNGAN's "optimized" block) has no ReLU on the image.
    """

    def __init__(self, in_ch: int, out_ch: int, first: bool, norm: str, bn_momentum: float, bn_eps: float):
        super().__init__()

        def make_norm(ch: int) -> nn.Module:
            return nn.BatchNorm2d(ch, eps=bn_eps, momentum=bn_momentum) if norm == "batch" else nn.Identity()

        self.first = first
        self.conv1, self.norm1 = conv3x3(in_ch, out_ch), make_norm(out_ch)
        self.conv2, self.norm2 = conv3x3(out_ch, out_ch), make_norm(out_ch)
        self.shortcut = conv1x1(in_ch, out_ch)

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.norm2(self.conv2(F.relu(self.norm1(self.conv1(h)))))
        return F.avg_pool2d(h, 2) + self.shortcut(F.avg_pool2d(x, 2))


class ResNetEncoder(nn.Module):
    """E: image in [-1, 1] -> code in R^z_dim."""

    def __init__(
        self,
        resolution: int,
        channels: int,
        z_dim: int,
        width: int,
        spectral_norm: bool,
        norm: str,
        bn_momentum: float,
        bn_eps: float,
        pooling: str = "mean",
    ):
        super().__init__()
        self.pooling = pooling
        outs = encoder_widths(resolution, width)
        self.blocks = nn.Sequential(
            *[
                DBlock(i, o, first=k == 0, norm=norm, bn_momentum=bn_momentum, bn_eps=bn_eps)
                for k, (i, o) in enumerate(zip([channels, *outs[:-1]], outs, strict=True))
            ]
        )
        self.fc = xavier(nn.Linear(outs[-1], z_dim))
        self.z_dim = z_dim
        if spectral_norm:  # after the init: it reads the initialised weights as weight_orig
            for layer in [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]:
                add_spectral_norm(layer)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.blocks(x))
        return self.fc(h.sum(dim=(2, 3)) if self.pooling == "sum" else h.mean(dim=(2, 3)))


class ResNetGenerator(nn.Module):
    """G: z in R^z_dim -> image in [-1, 1]."""

    def __init__(
        self,
        resolution: int,
        channels: int,
        z_dim: int,
        width: int,
        self_modulated: bool,
        bn_momentum: float,
        bn_eps: float,
    ):
        super().__init__()
        widths = level_widths(resolution, width)
        self.bottom = widths[0]
        self.fc = xavier(nn.Linear(z_dim, 16 * widths[0]))
        self.blocks = nn.ModuleList(
            [GBlock(i, o, z_dim, self_modulated, bn_momentum, bn_eps) for i, o in itertools.pairwise(widths)]
        )
        self.out_norm = nn.BatchNorm2d(widths[-1], eps=bn_eps, momentum=bn_momentum)
        self.to_image = xavier(nn.Conv2d(widths[-1], channels, 3, padding=1))
        self.z_dim = z_dim

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(-1, self.bottom, 4, 4)
        for block in self.blocks:
            h = block(h, z)
        return self.to_image(F.relu(self.out_norm(h))).tanh()


@ARCHITECTURES.register("resnet")
class ResNet(Architecture):
    """model=resnet: SNGAN/BigGAN-style residual E and G, 32 to 256 px."""

    def __init__(
        self,
        resolution: int,
        channels: int,
        z_dim: ZDim = 128,
        width: at_least(1, "channels = width x 1..16") = 64,
        spectral_norm: bool = True,
        e_norm: one_of(E_NORMS) = "none",
        self_modulated: bool = False,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
        pooling: one_of(POOLINGS) = "mean",
    ):
        super().__init__(resolution, channels, z_dim)
        if not (isinstance(resolution, int) and 32 <= resolution <= 256 and math.log2(resolution).is_integer()):
            raise UserError(
                f"dataset.resolution={resolution} must be a power of two from 32 to 256 for model=resnet "
                "(e.g. dataset.resolution=64)"
            )
        self.kwargs = {
            "resolution": resolution,
            "channels": channels,
            "z_dim": z_dim,
            "width": width,
            "bn_momentum": bn_momentum,
            "bn_eps": bn_eps,
        }
        self.spectral_norm, self.e_norm, self.self_modulated = spectral_norm, e_norm, self_modulated
        self.pooling = pooling

    def encoder(self) -> ResNetEncoder:
        return ResNetEncoder(**self.kwargs, spectral_norm=self.spectral_norm, norm=self.e_norm, pooling=self.pooling)

    def generator(self) -> ResNetGenerator:
        return ResNetGenerator(**self.kwargs, self_modulated=self.self_modulated)
