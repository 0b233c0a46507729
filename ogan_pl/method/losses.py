"""The O-GAN objective (docs/method.md, "The losses"): a GAN loss plus the correlation term.

    E = argmin  mean[ adv_E + penalty - lambda * rho(z, E(G(z))) ]
    G = argmin  mean[ adv_G - lambda * rho(z, E(G(z))) ]

A loss is one registered class (`loss=NAME`) that writes adv_E and adv_G per sample from what it
reads in `LossInputs` (real and fake scores, images, rho); `GANLoss` derives the E, G and joint
(reference-code) objectives from them once. Most GAN losses are f, g, h of the scores
(`FGHLoss`: adv_E = f(D(x)) + g(D(G(z))), adv_G = h(D(G(z)))); a relativistic loss reads both
scores in both steps. Sign conventions follow each loss's paper: GAN-QP's E scores real images low,
the others score them high.
"""

import abc
import dataclasses
import functools
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from ogan_pl.method.schedule import WARMUP_SHAPES, CorrSchedule
from ogan_pl.registry.registries import LOSSES
from ogan_pl.registry.values import NonNegativeFinite, at_least, one_of

Discriminator = Callable[[Tensor], Tensor]


@dataclasses.dataclass
class LossInputs:
    """What a loss may read for one batch (all per sample). In the E step x_fake is G(z) detached; in
    the G step d_fake carries G's gradient. D(x_real) is computed the first time a loss reads it, so
    the G step pays for it only with a loss that uses it (RpGAN)."""

    z: Tensor
    x_real: Tensor
    x_fake: Tensor
    d_fake: Tensor
    rho: Tensor  # rho(z, E(G(z))), E(A(G(z))) under augmentation
    disc: Discriminator  # D = T(E(.)), for penalties
    real_scores: Tensor | None = None
    code_fake: Tensor | None = None  # the code rho reads (the MSE ablation of the correlation term)
    # the joint update only, when E's lambda is not G's: rho and the code of G(z) detached (E's gradient alone)
    rho_e: Tensor | None = None
    code_fake_e: Tensor | None = None
    step: int = 0  # index of this E update (lazy regularization: the penalty is due when step % reg_every == 0)
    g_iter: int = 0  # generator iteration: lambda(g_iter) weighs the correlation term (loss.corr_warmup, corr_every)
    generator: torch.Generator | None = None  # this iteration's random stream (a resumed run draws the same)

    @functools.cached_property
    def d_real(self) -> Tensor:
        return self.real_scores if self.real_scores is not None else self.disc(self.x_real)

    def replace(self, **changes) -> "LossInputs":
        return dataclasses.replace(self, **changes)


CORR_TYPES = ("pearson", "mse")


class GANLoss(abc.ABC):
    """adv_E, adv_G (per sample) and E's penalty; the O-GAN term with weight `corr_weight` (lambda).

    corr_type=pearson is O-GAN's term, -rho(z, E(G(z))). corr_type=mse puts ||z - E(G(z))||^2 / nz
    in its place: the alternative the paper reports to fail, kept only for that ablation.
    lambda may follow a schedule over generator iterations (corr_warmup, corr_every:
    ogan_pl.method.schedule). E's loss weighs the term with corr_factor_e x lambda, G's with
    corr_factor_g x lambda (the paper: both 1; docs/method.md, "E's and G's lambda"). corr_factor_g=0
    leaves the term out of G's loss: E still learns to invert G, G trains as a plain GAN (the "latent
    regressor" baseline of BiGAN, Donahue et al. 2017).
    """

    #: the penalty needs d(D(x_real))/d(x_real): the caller marks x_real as requiring grad on the E
    #: updates where `needs_real_grad(step)`.
    requires_real_grad = False

    def __init__(
        self,
        corr_weight: NonNegativeFinite = 0.5,
        corr_type: one_of(CORR_TYPES, "pearson: O-GAN's -rho; mse: the paper's failing ablation") = "pearson",
        corr_warmup: at_least(0, "generator iterations; 0 = no warm-up") = 0,
        corr_warmup_shape: one_of(WARMUP_SHAPES) = "linear",
        corr_every: at_least(1, "1 = every generator iteration") = 1,
        corr_factor_e: NonNegativeFinite = 1.0,
        corr_factor_g: NonNegativeFinite = 1.0,
    ):
        self.corr_weight = corr_weight
        self.corr_type = corr_type
        self.corr_factor_e, self.corr_factor_g = float(corr_factor_e), float(corr_factor_g)
        self.corr_schedule = CorrSchedule(corr_weight, corr_warmup, corr_warmup_shape, corr_every)

    @property
    def trains_encoder(self) -> bool:
        """Whether E's loss has the correlation term at all (lambda 0 or corr_factor_e 0: the plain GAN's E)."""
        return self.corr_weight * self.corr_factor_e > 0

    @property
    def factors_differ(self) -> bool:
        return self.corr_factor_e != self.corr_factor_g

    def lam(self, inputs: LossInputs) -> float:
        """lambda at this generator iteration (ogan_pl.method.schedule); a host-side float, no sync."""
        return self.corr_schedule(inputs.g_iter)

    def corr_term(self, inputs: LossInputs, encoder_view: bool = False) -> Tensor:
        """The per-sample O-GAN term that lambda weighs: -rho, or the MSE ablation. encoder_view: of
        G(z) detached (the joint update's E-only copy)."""
        rho, code = (inputs.rho_e, inputs.code_fake_e) if encoder_view else (inputs.rho, inputs.code_fake)
        if self.corr_type == "mse":
            return (inputs.z.float() - code.float()).pow(2).mean(-1)
        return -rho

    @abc.abstractmethod
    def encoder_adversarial(self, inputs: LossInputs) -> Tensor:
        """E's adversarial loss per sample."""

    @abc.abstractmethod
    def generator_adversarial(self, inputs: LossInputs) -> Tensor:
        """G's adversarial loss per sample."""

    def penalty(self, inputs: LossInputs) -> Tensor:
        """Per-sample regulariser added to E's loss; inputs.x_fake is detached from G."""
        return torch.zeros_like(inputs.d_fake)

    def penalty_due(self, step: int) -> bool:
        """Whether E update `step` computes the penalty (always, unless the loss is lazy)."""
        return True

    def needs_real_grad(self, step: int) -> bool:
        return self.requires_real_grad and self.penalty_due(step)

    def encoder_loss(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
        adv, penalty = self.encoder_adversarial(inputs), self.penalty(inputs)
        loss = (adv + penalty + self.corr_factor_e * self.lam(inputs) * self.corr_term(inputs)).mean()
        return loss, {"adv_e": adv.mean(), "penalty": penalty.mean()}

    def generator_loss(self, inputs: LossInputs) -> tuple[Tensor, dict[str, Tensor]]:
        adv = self.generator_adversarial(inputs)
        loss = (adv + self.corr_factor_g * self.lam(inputs) * self.corr_term(inputs)).mean()
        return loss, {"adv_g": adv.mean()}

    def joint_loss(self, inputs: LossInputs, d_fake_g: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The reference code's single loss over E and G. `s` is E's view (x_fake and inputs.d_fake from
        stopgrad(G(z))); d_fake_g = D(G(z)) holds the same values with G's gradient.

        adv_G(d_fake_g) - adv_G(inputs.d_fake) is zero and sends no gradient to E (D(x_real) detached in
        both): it moves only G (the reference's "t2"). With E's lambda (a_E lambda) not G's (a_G lambda),
        the term is a_G lambda c(z, E(G(z))) + (a_E - a_G) lambda c(z, E(stopgrad G(z))): the same value
        as a_E lambda c, G's gradient from the first part alone, E's from both.
        """
        real = inputs.d_real.detach()
        g_view, g_view_ng = inputs.replace(d_fake=d_fake_g, real_scores=real), inputs.replace(real_scores=real)
        penalty = self.penalty(inputs)
        adv_e = self.encoder_adversarial(inputs)
        adv_g = self.generator_adversarial(g_view) - self.generator_adversarial(g_view_ng)
        lam = self.lam(inputs)
        corr = self.corr_factor_g * lam * self.corr_term(inputs)
        if self.factors_differ:
            corr = corr + (self.corr_factor_e - self.corr_factor_g) * lam * self.corr_term(inputs, encoder_view=True)
        loss = (adv_e + adv_g + corr).mean() + penalty.mean()
        return loss, {
            "adv_e": adv_e.mean(),
            "adv_g": self.generator_adversarial(g_view_ng).detach().mean(),
            "penalty": penalty.mean(),
        }


class FGHLoss(GANLoss):
    """adv_E = f(D(x)) + g(D(G(z))), adv_G = h(D(G(z))): the losses written as f, g, h in docs/method.md, "The losses"."""

    @abc.abstractmethod
    def f(self, d_real: Tensor) -> Tensor:
        """E's loss on real scores."""

    @abc.abstractmethod
    def g(self, d_fake: Tensor) -> Tensor:
        """E's loss on fake scores."""

    @abc.abstractmethod
    def h(self, d_fake: Tensor) -> Tensor:
        """G's loss on fake scores."""

    def encoder_adversarial(self, inputs: LossInputs) -> Tensor:
        return self.f(inputs.d_real) + self.g(inputs.d_fake)

    def generator_adversarial(self, inputs: LossInputs) -> Tensor:
        return self.h(inputs.d_fake)


def _input_gradient(scores: Tensor, inputs: Tensor) -> Tensor:
    (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    return grad.flatten(1)


def r1_penalty(inputs: LossInputs, gamma: float) -> Tensor:
    """(gamma / 2) * ||grad D(x_real)||^2 per sample (x_real requires grad: `requires_real_grad`)."""
    return 0.5 * gamma * _input_gradient(inputs.d_real, inputs.x_real).float().pow(2).sum(dim=1)


@LOSSES.register("gan_qp")
class GANQP(FGHLoss):
    """The paper's GAN-QP variant: t = D(x) - D(G(z)), qp = t^2 / (4 * mse(x, G(z)))."""

    def f(self, d_real: Tensor) -> Tensor:
        return d_real

    def g(self, d_fake: Tensor) -> Tensor:
        return -d_fake

    def h(self, d_fake: Tensor) -> Tensor:
        return d_fake

    def penalty(self, inputs: LossInputs):
        t = inputs.d_real - inputs.d_fake
        mse = (inputs.x_real.float() - inputs.x_fake.float()).pow(2).flatten(1).mean(1)
        return 0.25 * t.pow(2) / mse.clamp_min(1e-12)


@LOSSES.register("hinge")
class Hinge(FGHLoss):
    def f(self, d_real: Tensor) -> Tensor:
        return F.relu(1 - d_real)

    def g(self, d_fake: Tensor) -> Tensor:
        return F.relu(1 + d_fake)

    def h(self, d_fake: Tensor) -> Tensor:
        return -d_fake


class GradientPenaltyLoss(GANLoss):
    """A loss whose penalty is a gradient penalty on D's input, optionally lazy (StyleGAN2's lazy
    regularization): with reg_every = N it is computed on every N-th E update only, with its
    weight multiplied by N, so its average pull is unchanged at about 1/N of its cost."""

    def __init__(self, reg_every: at_least(1, "1: the penalty on every E update") = 1, **kwargs):
        super().__init__(**kwargs)
        self.reg_every = reg_every

    @property
    @abc.abstractmethod
    def penalty_weight(self) -> float:
        """The penalty's own weight (gp_weight, r1_gamma); 0 = off."""

    def penalty_due(self, step: int) -> bool:
        return step % self.reg_every == 0

    @abc.abstractmethod
    def gradient_penalty(self, inputs: LossInputs) -> Tensor:
        """The per-sample penalty at its own weight."""

    def penalty(self, inputs: LossInputs) -> Tensor:
        if self.penalty_weight <= 0 or not self.penalty_due(inputs.step):
            return torch.zeros_like(inputs.d_fake)
        return self.reg_every * self.gradient_penalty(inputs)


class R1Loss(GradientPenaltyLoss):
    """Optional R1 on real images: (r1_gamma / 2) * ||grad D(x_real)||^2 (0 = off)."""

    def __init__(self, r1_gamma: NonNegativeFinite = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.r1_gamma = r1_gamma
        self.requires_real_grad = r1_gamma > 0

    @property
    def penalty_weight(self) -> float:
        return self.r1_gamma

    def gradient_penalty(self, inputs: LossInputs) -> Tensor:
        return r1_penalty(inputs, self.r1_gamma)


@LOSSES.register("wgan_gp")
class WGANGP(GradientPenaltyLoss, FGHLoss):
    """WGAN with gradient penalty gp_weight * (||grad D(x_hat)|| - 1)^2 on random interpolates."""

    def __init__(self, gp_weight: NonNegativeFinite = 10.0, **kwargs):
        super().__init__(**kwargs)
        self.gp_weight = gp_weight

    @property
    def penalty_weight(self) -> float:
        return self.gp_weight

    def f(self, d_real: Tensor) -> Tensor:
        return -d_real

    def g(self, d_fake: Tensor) -> Tensor:
        return d_fake

    def h(self, d_fake: Tensor) -> Tensor:
        return -d_fake

    def gradient_penalty(self, inputs: LossInputs):
        x_real = inputs.x_real
        alpha = torch.rand(
            x_real.shape[0], 1, 1, 1, device=x_real.device, dtype=x_real.dtype, generator=inputs.generator
        )
        x_hat = torch.lerp(inputs.x_fake.detach(), x_real.detach(), alpha).requires_grad_(True)
        grad = _input_gradient(inputs.disc(x_hat), x_hat)
        return self.gp_weight * (grad.float().norm(dim=1) - 1).pow(2)


@LOSSES.register("nsgan")
class NSGAN(R1Loss, FGHLoss):
    """Non-saturating logistic GAN, optional R1 penalty (r1_gamma / 2) * ||grad D(x_real)||^2."""

    def f(self, d_real: Tensor) -> Tensor:
        return F.softplus(-d_real)

    def g(self, d_fake: Tensor) -> Tensor:
        return F.softplus(d_fake)

    def h(self, d_fake: Tensor) -> Tensor:
        return F.softplus(-d_fake)


@LOSSES.register("lsgan")
class LSGAN(FGHLoss):
    def f(self, d_real: Tensor) -> Tensor:
        return 0.5 * (d_real - 1).pow(2)

    def g(self, d_fake: Tensor) -> Tensor:
        return 0.5 * d_fake.pow(2)

    def h(self, d_fake: Tensor) -> Tensor:
        return 0.5 * (d_fake - 1).pow(2)


@LOSSES.register("rpgan")
class RpGAN(R1Loss):
    """Relativistic pairing GAN (Jolicoeur-Martineau 2019; R3GAN): both steps compare paired scores,
    adv_E = softplus(D(G(z)) - D(x)), adv_G = softplus(D(x) - D(G(z))); optional R1 on real images."""

    def encoder_adversarial(self, inputs: LossInputs) -> Tensor:
        return F.softplus(inputs.d_fake - inputs.d_real)

    def generator_adversarial(self, inputs: LossInputs) -> Tensor:
        return F.softplus(inputs.d_real - inputs.d_fake)
