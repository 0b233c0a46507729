"""Differentiable augmentation of what E sees (`augment=`): DiffAugment (Zhao et al. 2020).

The discriminator becomes D(x) = T(E(A(x))) with A a random, differentiable transform drawn anew
for every image: real and generated images are augmented, in the E step and in the G step (G's
gradient flows through A), so E cannot memorise a small training set. The loss formulas keep
the clean images (GAN-QP's distance, the points of WGAN-GP's interpolates); penalties on D's
input gradient differentiate through A, as StyleGAN2-ADA does.

What O-GAN adds: rho(z, E(A(G(z)))) (`rho_on=augmented`, no extra cost: the same forward pass), or
rho(z, E(G(z))) on clean images (`rho_on=clean`, one more E pass per step). Reconstructions and
every metric use clean images: A is applied only inside the training step.

Policies (comma-separated): color (brightness, saturation, contrast), translation (up to
`translation_ratio` of the size, zero padding), cutout (a square of `cutout_ratio` of the size set
to zero, i.e. mid-grey in [-1, 1]).

The draws come from the generator the training step passes (seeded per generator iteration, like
the noise z), so a resumed run augments exactly as an uninterrupted one. Your own augmentation:
subclass `Augment`, register it (`@AUGMENTS.register("name")`), draw from `generator`.
"""

import functools
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from ogan_pl.registry.registries import AUGMENTS
from ogan_pl.registry.values import finite, one_of

RHO_ON = ("augmented", "clean")


class Augment:
    """No augmentation: the identity (and the base of other augmentations)."""

    rho_on = "augmented"  # what rho reads: E(A(G(z))), or "clean": E(G(z))

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return x


AUGMENTS.register("none", Augment)


def _uniform(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """One U[0, 1) number per image, shaped to broadcast over (C, H, W)."""
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype, generator=generator)


def _integers(low: int, high: int, n: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """n integers in [low, high), shaped (n, 1, 1)."""
    return torch.randint(low, high, (n, 1, 1), device=x.device, generator=generator)


def brightness(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Add one offset in [-0.5, 0.5) per image."""
    return x + (_uniform(x, generator) - 0.5)


def saturation(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Scale each image's deviation from its grey value by a factor in [0, 2)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, generator) * 2) + mean


def contrast(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Scale each image's deviation from its mean by a factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def color(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    return contrast(saturation(brightness(x, generator), generator), generator)


def translation(x: Tensor, ratio: float, generator: torch.Generator | None = None) -> Tensor:
    """Shift each image by an integer offset in [-ratio * size, ratio * size] per axis; zeros enter."""
    b, _, h, w = x.shape
    max_y, max_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = _integers(-max_y, max_y + 1, b, x, generator)
    dx = _integers(-max_x, max_x + 1, b, x, generator)
    rows = torch.arange(h, device=x.device).view(1, h, 1) + dy  # source row of each output row
    cols = torch.arange(w, device=x.device).view(1, 1, w) + dx
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))  # sources outside the image read the zero border
    rows = (rows + 1).clamp(0, h + 1).expand(b, h, w)
    cols = (cols + 1).clamp(0, w + 1).expand(b, h, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1).expand(b, h, w)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: Tensor, ratio: float, generator: torch.Generator | None = None) -> Tensor:
    """Zero one square of side ratio * size per image, centred anywhere in the image."""
    b, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _integers(0, h + (1 - size_y % 2), b, x, generator)
    cx = _integers(0, w + (1 - size_x % 2), b, x, generator)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - (cy - size_y // 2)  # position inside the square
    cols = torch.arange(w, device=x.device).view(1, 1, w) - (cx - size_x // 2)
    inside = (rows >= 0) & (rows < size_y) & (cols >= 0) & (cols < size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = ("color", "translation", "cutout")
#: a comma-separated list of POLICIES, in the order they are applied
Policy = Annotated[
    str,
    Field(
        pattern=rf"^\s*({'|'.join(POLICIES)})\s*(,\s*({'|'.join(POLICIES)})\s*)*$",
        description=f"a comma-separated list of {', '.join(POLICIES)}",
    ),
]
Ratio = finite(above=0, below=1)


@AUGMENTS.register("diffaug")
class DiffAugment(Augment):
    """augment=diffaug: DiffAugment's color, translation and cutout, in the order of `policy`."""

    def __init__(
        self,
        policy: Policy = "color,translation,cutout",
        translation_ratio: Ratio = 0.125,
        cutout_ratio: Ratio = 0.5,
        rho_on: one_of(RHO_ON) = "augmented",
    ):
        self.ops = [op.strip() for op in policy.split(",")]
        self.rho_on = rho_on
        transforms = {
            "color": color,
            "translation": functools.partial(translation, ratio=translation_ratio),
            "cutout": functools.partial(cutout, ratio=cutout_ratio),
        }
        self.transforms = [transforms[op] for op in self.ops]

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for transform in self.transforms:
            x = transform(x, generator=generator)
        return x
