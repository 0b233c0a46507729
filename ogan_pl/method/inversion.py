"""Hybrid inversion: start from the encoder's code, then optimise it (docs/method.md, "Inversion").

For images x, find codes z with G(z) close to x:

    z_0   = s * N(E(x))                                   init="encoder" (or 0, or z ~ N(0, I))
    L(z)  = mse(G(z), x) + w_p * d(G(z), x) + w_e * ||z - s * N(E(G(z)))||^2 / nz
    z_t+1 = Adam step on sum_i L(z_i)                      every image has its own code and moments

d is a perceptual distance (LPIPS when its weights are present, else distances in another
network's features, see ogan_pl.method.perceptual). The last term keeps z where the encoder would
put the image G(z), so the code stays in the encoder's domain (in-domain inversion, Zhu et al.
2020, written with O-GAN's N(.)). With w_e = 0 and init="mean" or "random" this is plain
optimisation-based projection. The per-image losses are summed, so each image's gradient does
not depend on the batch; the loss of every step stays on the device (no host sync per step).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ogan_pl.method.correlation import standardize

INITS = ("encoder", "mean", "random")


@dataclass
class InversionResult:
    z: Tensor  # (B, z_dim) the codes
    images: Tensor  # (B, C, R, R) G(z)
    losses: Tensor  # (steps + 1, B): the loss of each image before each step, and after the last
    snapshots: dict[int, Tensor]  # step -> the codes after that many steps (those asked for)


def encoder_code(E: nn.Module, x: Tensor, recon_scale: float) -> Tensor:
    """s * N(E(x)): the code on the noise's scale (docs/method.md, "Reconstruction and interpolation")."""
    return recon_scale * standardize(E(x))


def initial_code(
    E: nn.Module, x: Tensor, z_dim: int, init: str, recon_scale: float, generator: torch.Generator | None = None
) -> Tensor:
    if init == "encoder":
        return encoder_code(E, x, recon_scale)
    if init == "mean":
        return torch.zeros(len(x), z_dim, device=x.device)
    if init == "random":
        return torch.randn(len(x), z_dim, device=x.device, generator=generator)
    raise ValueError(f"init must be one of {INITS}, got {init!r}")


def inversion_loss(
    G: nn.Module,
    E: nn.Module,
    z: Tensor,
    x: Tensor,
    recon_scale: float,
    perceptual: Callable[[Tensor, Tensor], Tensor] | None = None,
    perceptual_weight: float = 0.0,
    encoder_weight: float = 0.0,
    x_features: list[Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """(per-image loss L(z) (B,), G(z)). `x_features`: the perceptual network's features of x,
    computed once by the caller (a distance with `features` and `compare`, as in ogan_pl.method.perceptual)."""
    fake = G(z)
    loss = (fake - x).pow(2).flatten(1).mean(1)
    if perceptual is not None and perceptual_weight > 0:
        distance = (
            perceptual.compare(perceptual.features(fake), x_features) if x_features is not None else perceptual(fake, x)
        )
        loss = loss + perceptual_weight * distance
    if encoder_weight > 0:
        loss = loss + encoder_weight * (z - encoder_code(E, fake, recon_scale)).pow(2).mean(1)
    return loss, fake


def invert(
    G: nn.Module,
    E: nn.Module,
    x: Tensor,
    z_dim: int,
    *,
    steps: int,
    lr: float,
    init: str,
    recon_scale: float,
    perceptual: Callable[[Tensor, Tensor], Tensor] | None,
    perceptual_weight: float,
    encoder_weight: float,
    generator: torch.Generator | None = None,
    snapshots: tuple[int, ...] = (),
    on_snapshot: Callable[[int], None] | None = None,
) -> InversionResult:
    """Codes of the images x (B, C, R, R) in [-1, 1]. G and E are used as they are (eval mode, their
    weights untouched: only z is optimised). Deterministic given `generator` (init="random").
    `snapshots`: step counts at which to keep a copy of the codes (one run serves several budgets);
    `on_snapshot(step)` is called there (a benchmark's clock; it may sync, the loop itself never does)."""
    weights = [p for net in (G, E) for p in net.parameters()]
    flags = [p.requires_grad for p in weights]
    for p in weights:
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            z0 = initial_code(E, x, z_dim, init, recon_scale, generator)
            x_features = (
                perceptual.features(x)
                if perceptual is not None
                and perceptual_weight > 0
                and hasattr(perceptual, "features")
                and hasattr(perceptual, "compare")
                else None
            )
        z = z0.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=lr)
        losses = torch.empty(steps + 1, len(x), device=x.device)
        kept: dict[int, Tensor] = {}

        def keep(step: int) -> None:
            if step in snapshots:
                kept[step] = z.detach().clone()
                if on_snapshot is not None:
                    on_snapshot(step)

        keep(0)
        with torch.enable_grad():  # z's gradient, also when called inside torch.no_grad()
            for step in range(steps):
                loss, _ = inversion_loss(
                    G, E, z, x, recon_scale, perceptual, perceptual_weight, encoder_weight, x_features
                )
                losses[step] = loss.detach()
                optimizer.zero_grad(set_to_none=True)
                loss.sum().backward()
                optimizer.step()
                keep(step + 1)
        with torch.no_grad():
            loss, fake = inversion_loss(
                G, E, z, x, recon_scale, perceptual, perceptual_weight, encoder_weight, x_features
            )
            losses[steps] = loss
        return InversionResult(z.detach(), fake, losses, kept)
    finally:
        for p, flag in zip(weights, flags, strict=True):
            p.requires_grad_(flag)
