"""The O-GAN objective (OGAN.md): a GAN loss written as f, g, h plus the correlation term.

    E = argmin  mean[ f(D(x)) + g(D(G(z))) + penalty - lambda * rho(z, E(G(z))) ]
    G = argmin  mean[ h(D(G(z))) - lambda * rho(z, E(G(z))) ]

Each GAN loss below defines only f, g, h and its penalty; `GANLoss` derives the E, G and joint
(reference-code) objectives from them once. Sign conventions follow each loss's paper: GAN-QP's
E scores real images low, the others score them high.
"""
import abc
from typing import Callable

import torch
from torch import Tensor
from torch.nn import functional as F


def correlation(a: Tensor, b: Tensor, eps: float = 1e-12) -> Tensor:
    """Per-sample Pearson correlation over the last dim: rho = cos(N(a), N(b)).

    Centring and l2-normalising both sides gives exactly cos(N(a), N(b)) (the std cancels, so the
    biased/unbiased question never arises). A constant vector gives 0, with finite gradients.
    """
    a = a.float()
    b = b.float()
    a = F.normalize(a - a.mean(-1, keepdim=True), dim=-1, eps=eps)
    b = F.normalize(b - b.mean(-1, keepdim=True), dim=-1, eps=eps)
    return (a * b).sum(-1)


def standardize(v: Tensor, eps: float = 1e-8) -> Tensor:
    """N(v) = (v - avg(v)) / std(v) per sample over the last dim (biased std)."""
    v = v.float()
    v = v - v.mean(-1, keepdim=True)
    return v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + eps)


Discriminator = Callable[[Tensor], Tensor]


class GANLoss(abc.ABC):
    """f, g, h of a GAN loss (per-sample, on D scores) plus its penalty, with the O-GAN term."""

    #: the penalty needs d(D(x_real))/d(x_real): the caller marks x_real as requiring grad.
    requires_real_grad = False

    def __init__(self, corr_weight: float = 0.5):
        if corr_weight < 0:
            raise ValueError(f"loss.corr_weight must be >= 0, got {corr_weight}")
        self.corr_weight = corr_weight

    @abc.abstractmethod
    def f(self, d_real: Tensor) -> Tensor:
        """E's loss on real scores."""

    @abc.abstractmethod
    def g(self, d_fake: Tensor) -> Tensor:
        """E's loss on fake scores."""

    @abc.abstractmethod
    def h(self, d_fake: Tensor) -> Tensor:
        """G's loss on fake scores."""

    def penalty(self, disc: Discriminator, x_real: Tensor, x_fake: Tensor,
                d_real: Tensor, d_fake: Tensor) -> Tensor:
        """Per-sample regulariser added to E's loss; x_fake is already detached from G."""
        return torch.zeros_like(d_real)

    def encoder_loss(self, d_real: Tensor, d_fake: Tensor, rho: Tensor,
                     penalty: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        adv = self.f(d_real) + self.g(d_fake)
        loss = (adv + penalty - self.corr_weight * rho).mean()
        return loss, {"adv_e": adv.mean(), "penalty": penalty.mean()}

    def generator_loss(self, d_fake: Tensor, rho: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        adv = self.h(d_fake)
        loss = (adv - self.corr_weight * rho).mean()
        return loss, {"adv_g": adv.mean()}

    def joint_loss(self, d_real: Tensor, d_fake: Tensor, d_fake_ng: Tensor, rho: Tensor,
                   penalty: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The reference code's single loss over E and G.

        d_fake = D(G(z)) and d_fake_ng = D(stopgrad(G(z))) hold the same values, so
        h(d_fake) - h(d_fake_ng) is zero and sends no gradient to E: it moves only G (the "t2").
        """
        adv_e = self.f(d_real) + self.g(d_fake_ng)
        adv_g = self.h(d_fake) - self.h(d_fake_ng)
        loss = (adv_e + adv_g - self.corr_weight * rho).mean() + penalty.mean()
        return loss, {"adv_e": adv_e.mean(), "adv_g": self.h(d_fake_ng).mean(), "penalty": penalty.mean()}


def _input_gradient(scores: Tensor, inputs: Tensor) -> Tensor:
    (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    return grad.flatten(1)


class GANQP(GANLoss):
    """The paper's GAN-QP variant: t = D(x) - D(G(z)), qp = t^2 / (4 * mse(x, G(z)))."""

    def f(self, d_real: Tensor) -> Tensor:
        return d_real

    def g(self, d_fake: Tensor) -> Tensor:
        return -d_fake

    def h(self, d_fake: Tensor) -> Tensor:
        return d_fake

    def penalty(self, disc, x_real, x_fake, d_real, d_fake):
        t = d_real - d_fake
        mse = (x_real.float() - x_fake.float()).pow(2).flatten(1).mean(1)
        return 0.25 * t.pow(2) / mse.clamp_min(1e-12)


class Hinge(GANLoss):
    def f(self, d_real: Tensor) -> Tensor:
        return F.relu(1 - d_real)

    def g(self, d_fake: Tensor) -> Tensor:
        return F.relu(1 + d_fake)

    def h(self, d_fake: Tensor) -> Tensor:
        return -d_fake


class WGANGP(GANLoss):
    """WGAN with gradient penalty gp_weight * (||grad D(x_hat)|| - 1)^2 on random interpolates."""

    def __init__(self, corr_weight: float = 0.5, gp_weight: float = 10.0):
        super().__init__(corr_weight)
        if gp_weight < 0:
            raise ValueError(f"loss.gp_weight must be >= 0, got {gp_weight}")
        self.gp_weight = gp_weight

    def f(self, d_real: Tensor) -> Tensor:
        return -d_real

    def g(self, d_fake: Tensor) -> Tensor:
        return d_fake

    def h(self, d_fake: Tensor) -> Tensor:
        return -d_fake

    def penalty(self, disc, x_real, x_fake, d_real, d_fake):
        alpha = torch.rand(x_real.shape[0], 1, 1, 1, device=x_real.device, dtype=x_real.dtype)
        x_hat = torch.lerp(x_fake.detach(), x_real.detach(), alpha).requires_grad_(True)
        grad = _input_gradient(disc(x_hat), x_hat)
        return self.gp_weight * (grad.float().norm(dim=1) - 1).pow(2)


class NSGAN(GANLoss):
    """Non-saturating logistic GAN, optional R1 penalty (r1_gamma / 2) * ||grad D(x_real)||^2."""

    def __init__(self, corr_weight: float = 0.5, r1_gamma: float = 0.0):
        super().__init__(corr_weight)
        if r1_gamma < 0:
            raise ValueError(f"loss.r1_gamma must be >= 0, got {r1_gamma}")
        self.r1_gamma = r1_gamma
        self.requires_real_grad = r1_gamma > 0

    def f(self, d_real: Tensor) -> Tensor:
        return F.softplus(-d_real)

    def g(self, d_fake: Tensor) -> Tensor:
        return F.softplus(d_fake)

    def h(self, d_fake: Tensor) -> Tensor:
        return F.softplus(-d_fake)

    def penalty(self, disc, x_real, x_fake, d_real, d_fake):
        if self.r1_gamma == 0:
            return torch.zeros_like(d_real)
        grad = _input_gradient(d_real, x_real)
        return 0.5 * self.r1_gamma * grad.float().pow(2).sum(dim=1)


class LSGAN(GANLoss):
    def f(self, d_real: Tensor) -> Tensor:
        return 0.5 * (d_real - 1).pow(2)

    def g(self, d_fake: Tensor) -> Tensor:
        return 0.5 * d_fake.pow(2)

    def h(self, d_fake: Tensor) -> Tensor:
        return 0.5 * (d_fake - 1).pow(2)
