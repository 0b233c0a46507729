"""The three image grids of a trained O-GAN, shared by the training callback and evaluate.py.

samples:          G(z) for a fixed z, 8x8.
reconstructions:  pairs (x, G(s * N(E(x)))) side by side, for fixed held-out x.
interpolations:   top rows from x_a to x_b through their codes (real x_a and x_b at the ends),
                  bottom rows between two random z.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from ogan_pl.config.schema import Section
from ogan_pl.data.convert import to_unit
from ogan_pl.registry.values import PositiveInt, at_least

GRID_NAMES = ("samples", "reconstructions", "interpolations")


#: steps along one interpolation row: its two ends at least
InterpSteps = at_least(2, "an interpolation row has two ends")


class GridLayout(Section):
    """Grid sizes that can be drawn (evaluate.py's grid_layout; the images callback declares the same)."""

    n_samples: PositiveInt
    n_recon: PositiveInt
    interp_rows: PositiveInt
    interp_steps: InterpSteps


@dataclass
class GridInputs:
    """What the grids are made from; fixed once so grids of successive steps are comparable."""

    z: Tensor  # (n_samples, z_dim)
    recon: Tensor  # (n_recon, C, R, R) held-out reals in [-1, 1]
    interp_a: Tensor  # (rows, C, R, R)
    interp_b: Tensor
    z_a: Tensor  # (rows, z_dim)
    z_b: Tensor
    steps: int = 8

    @classmethod
    def create(
        cls,
        z_dim: int,
        holdout: Tensor,
        n_samples: int = 64,
        n_recon: int = 32,
        interp_rows: int = 4,
        interp_steps: int = 8,
        seed: int = 0,
    ) -> "GridInputs":
        gen = torch.Generator().manual_seed(seed)
        n_recon = min(n_recon, len(holdout))
        pairs = holdout[torch.arange(n_recon, n_recon + 2 * interp_rows) % len(holdout)]
        return cls(
            z=torch.randn(n_samples, z_dim, generator=gen),
            recon=holdout[:n_recon],
            interp_a=pairs[0::2],
            interp_b=pairs[1::2],
            z_a=torch.randn(interp_rows, z_dim, generator=gen),
            z_b=torch.randn(interp_rows, z_dim, generator=gen),
            steps=interp_steps,
        )


MIN_CELL_PX = 64


def _to_unit(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1]; small images upscaled (nearest, an integer factor) to cells of >= 64 px."""
    images = to_unit(images)
    factor = -(-MIN_CELL_PX // images.shape[-1])
    return images.repeat_interleave(factor, -1).repeat_interleave(factor, -2) if factor > 1 else images


@torch.no_grad()
def make_grids(model, inputs: GridInputs, use_ema: bool = True) -> dict[str, Tensor]:
    """-> {name: (3 or 1, H, W) float image in [0, 1]} for `model` (an ogan_pl.OGAN)."""
    samples = model.decode(inputs.z, use_ema)
    recon = model.reconstruct(inputs.recon, use_ema)
    pairs = torch.stack([inputs.recon.to(recon.device), recon], dim=1).flatten(0, 1)
    real_rows = model.interpolate(inputs.interp_a, inputs.interp_b, inputs.steps, use_ema)
    real_rows = torch.cat(
        [inputs.interp_a.to(real_rows.device)[:, None], real_rows, inputs.interp_b.to(real_rows.device)[:, None]], dim=1
    )
    z_rows = model.interpolate_latents(inputs.z_a, inputs.z_b, inputs.steps + 2, use_ema)
    interp = torch.cat([real_rows, z_rows]).flatten(0, 1)
    return {
        "samples": make_grid(_to_unit(samples), nrow=8, padding=2),
        "reconstructions": make_grid(_to_unit(pairs), nrow=8, padding=2),
        "interpolations": make_grid(_to_unit(interp), nrow=inputs.steps + 2, padding=2),
    }


def save_grids(grids: dict[str, Tensor], out_dir: str | Path, suffix: str = "") -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, grid in grids.items():
        paths[name] = out_dir / f"{name}{suffix}.png"
        save_image(grid, paths[name])
    return paths
