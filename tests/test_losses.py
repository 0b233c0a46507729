"""The O-GAN math against independent NumPy computations."""

import numpy as np
import pytest
import torch

from ogan_pl.method.correlation import correlation, standardize
from ogan_pl.method.losses import GANQP, LSGAN, NSGAN, WGANGP, Hinge, LossInputs, RpGAN
from ogan_pl.registry.registries import LOSSES
from ogan_pl.utils.errors import UserError


def numpy_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b, strict=True)])


def test_correlation_equals_numpy_pearson():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(16, 32)), rng.normal(size=(16, 32))
    b[:4] = a[:4] * 2 + rng.normal(size=(4, 32)) * 0.1  # some strongly correlated rows
    got = correlation(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_allclose(got, numpy_pearson(a, b), rtol=1e-5, atol=1e-6)
    assert got[:4].min() > 0.9


def test_correlation_is_cos_of_standardized_vectors():
    a, b = torch.randn(8, 20), torch.randn(8, 20)
    cos = torch.nn.functional.cosine_similarity(standardize(a), standardize(b), dim=-1)
    torch.testing.assert_close(correlation(a, b), cos, rtol=1e-5, atol=1e-6)


def test_correlation_invariant_to_per_sample_affine_maps():
    a, b = torch.randn(8, 20), torch.randn(8, 20)
    scale_a, shift_a = torch.rand(8, 1) * 5 + 0.1, torch.randn(8, 1) * 3
    scale_b, shift_b = torch.rand(8, 1) * 5 + 0.1, torch.randn(8, 1) * 3
    base = correlation(a, b)
    torch.testing.assert_close(correlation(a * scale_a + shift_a, b), base, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(correlation(a, b * scale_b + shift_b), base, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(correlation(-a, b), -base, rtol=1e-5, atol=1e-6)


def test_correlation_safe_for_constant_vectors():
    a = torch.full((3, 10), 2.5, requires_grad=True)
    b = torch.randn(3, 10, requires_grad=True)
    rho = correlation(a, b)
    assert torch.equal(rho.detach(), torch.zeros(3))
    rho.sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_standardize_matches_numpy_biased_std():
    v = np.random.default_rng(1).normal(3, 2, size=(5, 40))
    expected = (v - v.mean(1, keepdims=True)) / v.std(1, keepdims=True)  # np.std is biased
    np.testing.assert_allclose(standardize(torch.tensor(v)).numpy(), expected, rtol=1e-4, atol=1e-5)


def inputs(d_real, d_fake, rho=None, x_real=None, x_fake=None, disc=None, step=0) -> LossInputs:
    n = len(d_fake)
    return LossInputs(
        z=torch.zeros(n, 2),
        x_real=x_real,
        x_fake=x_fake,
        d_fake=d_fake,
        rho=torch.zeros(n) if rho is None else rho,
        disc=disc,
        real_scores=d_real,
        step=step,
    )


def gan_qp_numpy(e_real, e_fake, x_real, x_fake, z, lam):
    """docs/method.md ("The losses"), transcribed: t_i, qp_i, L_E, L_G with avg = mean over the code."""
    t = e_real.mean(1) - e_fake.mean(1)
    qp = t**2 / (4 * ((x_real - x_fake) ** 2).reshape(len(t), -1).mean(1))
    rho = numpy_pearson(z, e_fake)
    return np.mean(t + qp - lam * rho), np.mean(e_fake.mean(1) - lam * rho)


def test_gan_qp_losses_equal_numpy_transcription():
    rng = np.random.default_rng(2)
    e_real, e_fake, z = (rng.normal(size=(6, 16)) for _ in range(3))
    x_real, x_fake = rng.uniform(-1, 1, size=(6, 3, 4, 4)), rng.uniform(-1, 1, size=(6, 3, 4, 4))
    loss = GANQP(corr_weight=0.7)
    T = torch.tensor
    d_real, d_fake = T(e_real).mean(1), T(e_fake).mean(1)
    rho = correlation(T(z), T(e_fake))
    s = inputs(d_real, d_fake, rho, T(x_real), T(x_fake))
    l_e, _ = loss.encoder_loss(s)
    l_g, _ = loss.generator_loss(s)
    want_e, want_g = gan_qp_numpy(e_real, e_fake, x_real, x_fake, z, 0.7)
    assert l_e.item() == pytest.approx(want_e, rel=1e-6)
    assert l_g.item() == pytest.approx(want_g, rel=1e-6)


def test_module_objectives_equal_numpy_transcription(make_model):
    """The training step's own E and G losses, on a real (tiny) E and G, against NumPy."""
    model = make_model()
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    z = torch.randn(8, model.z_dim)
    l_e, _ = model.encoder_objective(x, z, step=0)
    l_g, _ = model.generator_objective(x, z)
    with torch.no_grad():  # same train-mode forward passes, done independently
        fake = model.G(z)
        e_real, e_fake = model.E(x).double().numpy(), model.E(fake).double().numpy()
    args = (e_real, e_fake, x.double().numpy(), fake.double().numpy(), z.double().numpy())
    lam_e = 0.5 * model.objective.corr_factor_e  # the small-image rule: 2 x lambda for E
    assert lam_e == 1.0
    assert l_e.item() == pytest.approx(gan_qp_numpy(*args, lam_e)[0], rel=1e-4)
    assert l_g.item() == pytest.approx(gan_qp_numpy(*args, 0.5)[1], rel=1e-4)


def _grads(module, loss):
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)


def test_joint_t2_term_sends_no_gradient_to_encoder(make_model):
    model = make_model(**{"train.update": "joint"})
    z = torch.randn(8, model.z_dim)
    fake = model.G(z)
    d_fake, d_fake_ng = model.discriminate(fake), model.discriminate(fake.detach())
    obj = model.objective
    t2 = (obj.generator_adversarial(inputs(None, d_fake)) - obj.generator_adversarial(inputs(None, d_fake_ng))).mean()
    assert t2.item() == 0.0
    e_grads = [g for g in _grads(model.E, t2) if g is not None]
    assert e_grads and all(torch.count_nonzero(g) == 0 for g in e_grads)
    g_grads = _grads(model.G, t2)
    assert sum(g.abs().sum() for g in g_grads if g is not None) > 0


@pytest.mark.parametrize(
    "loss, factors",
    [
        ("gan_qp", (1.0, 1.0)),
        ("gan_qp", (2.0, 1.0)),
        ("gan_qp", (0.5, 3.0)),
        ("rpgan", (2.0, 1.0)),
        ("wgan_gp", (1.0, 1.0)),
    ],
)
def test_joint_gradients_are_the_sum_of_the_alternating_ones(make_model, loss, factors):
    """Reference joint loss: E gets the E-step gradient and G gets the G-step gradient, exactly,
    also for a loss whose G term reads the real scores (RpGAN), one with a penalty, and E's lambda
    not G's (loss.corr_factor_e, corr_factor_g).

    In float64: t2's two E-gradients cancel exactly in value, but in float32 the rounding of the
    cancellation leaves ~1e-6 noise on small gradients. BatchNorm in eval mode, so the extra
    forward passes of the joint objective see the same normalisation as the alternating ones.
    """
    model = (
        make_model(
            **{
                "train.update": "joint",
                "loss": loss,
                "loss.corr_factor_e": factors[0],
                "loss.corr_factor_g": factors[1],
            }
        )
        .double()
        .eval()
    )
    x, z = (torch.rand(8, 3, 32, 32) * 2 - 1).double(), torch.randn(8, model.z_dim).double()
    torch.manual_seed(0)  # WGAN-GP's interpolates
    joint, _ = model.joint_objective(x, z, step=0)
    joint_e, joint_g = _grads(model.E, joint), _grads(model.G, joint)
    torch.manual_seed(0)
    e_loss, _ = model.encoder_objective(x, z, step=0)
    g_loss, _ = model.generator_objective(x, z)
    pairs = list(zip(joint_e, _grads(model.E, e_loss), strict=True)) + list(
        zip(joint_g, _grads(model.G, g_loss), strict=True)
    )
    for a, b in pairs:
        if factors[0] == factors[1]:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
        else:  # float32's rounding, relative to the largest entry of the gradient
            assert a.shape == b.shape and (a - b).abs().max() <= 1e-5 * b.abs().max()


@pytest.mark.parametrize("loss_cls", [GANQP, Hinge, WGANGP, NSGAN, LSGAN, RpGAN])
def test_every_loss_has_the_correlation_term(loss_cls):
    torch.manual_seed(1)

    def disc(x):
        return x.flatten(1).sum(1)

    x_real, x_fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    rho = torch.rand(4)
    without = loss_cls(corr_weight=0.0)
    with_term = loss_cls(corr_weight=0.5)
    s = inputs(disc(x_real), disc(x_fake), rho, x_real, x_fake, disc)
    torch.manual_seed(0)
    a = with_term.encoder_loss(s)[0]
    torch.manual_seed(0)
    diff_e = a - without.encoder_loss(s)[0]
    diff_g = with_term.generator_loss(s)[0] - without.generator_loss(s)[0]
    # (float32: the difference of two losses that hold a penalty of about 10)
    assert diff_e.item() == pytest.approx(-0.5 * rho.mean().item(), rel=1e-5, abs=1e-5)
    assert diff_g.item() == pytest.approx(-0.5 * rho.mean().item(), rel=1e-5, abs=1e-5)


def test_standard_loss_formulas():
    d_real, d_fake = torch.tensor([0.3, -1.2]), torch.tensor([2.0, -0.5])
    sp = torch.nn.functional.softplus
    torch.testing.assert_close(Hinge().f(d_real) + Hinge().g(d_fake), torch.relu(1 - d_real) + torch.relu(1 + d_fake))
    torch.testing.assert_close(
        NSGAN().f(d_real) + NSGAN().g(d_fake), -torch.log(torch.sigmoid(d_real)) - torch.log(1 - torch.sigmoid(d_fake))
    )
    torch.testing.assert_close(NSGAN().h(d_fake), sp(-d_fake))
    torch.testing.assert_close(LSGAN().f(d_real) + LSGAN().g(d_fake), 0.5 * (d_real - 1) ** 2 + 0.5 * d_fake**2)
    torch.testing.assert_close(WGANGP().f(d_real) + WGANGP().g(d_fake), d_fake - d_real)


def test_wgan_gp_penalty_of_a_linear_critic():
    """D(x) = <w, x>: the gradient is w everywhere, so the penalty is 10 (||w|| - 1)^2 exactly."""
    w = torch.randn(3 * 4 * 4)

    def disc(x):
        return x.flatten(1) @ w

    x_real, x_fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    pen = WGANGP(gp_weight=10).penalty(inputs(disc(x_real), disc(x_fake), x_real=x_real, x_fake=x_fake, disc=disc))
    torch.testing.assert_close(pen, torch.full((5,), 10 * (w.norm().item() - 1) ** 2), rtol=1e-5, atol=1e-5)


def test_r1_penalty_of_a_quadratic_critic():
    """D(x) = 0.5 ||x||^2: grad = x, so R1 = gamma/2 ||x||^2."""
    x = torch.randn(4, 3, 4, 4).requires_grad_(True)
    d_real = 0.5 * x.flatten(1).pow(2).sum(1)
    loss = NSGAN(r1_gamma=2.0)
    assert loss.requires_real_grad
    torch.testing.assert_close(loss.penalty(inputs(d_real, d_real, x_real=x)), x.detach().flatten(1).pow(2).sum(1))


def test_negative_or_infinite_weights_rejected():
    """A loss built from a config (the registry: its constructor's declared ranges) refuses them."""
    for name, key, value in (
        ("gan_qp", "corr_weight", -1),
        ("wgan_gp", "gp_weight", -1),
        ("nsgan", "r1_gamma", -0.1),
        ("gan_qp", "corr_weight", float("inf")),
        ("rpgan", "r1_gamma", float("nan")),
    ):
        with pytest.raises(UserError, match=f"loss.{key}="):
            LOSSES.build({"_name_": name, key: value}, "loss")


def test_rpgan_equals_numpy_transcription():
    """RpGAN (relativistic pairing): L_E = mean softplus(D(G(z)) - D(x)) - lambda rho,
    L_G = mean softplus(D(x) - D(G(z))) - lambda rho, both reading the real scores."""
    rng = np.random.default_rng(3)
    d_real, d_fake, rho = rng.normal(size=6), rng.normal(size=6), rng.uniform(-1, 1, size=6)

    def softplus(v):
        return np.log1p(np.exp(v))

    s = inputs(torch.tensor(d_real), torch.tensor(d_fake), torch.tensor(rho))
    loss = RpGAN(corr_weight=0.3)
    assert loss.encoder_loss(s)[0].item() == pytest.approx(np.mean(softplus(d_fake - d_real) - 0.3 * rho), rel=1e-9)
    assert loss.generator_loss(s)[0].item() == pytest.approx(np.mean(softplus(d_real - d_fake) - 0.3 * rho), rel=1e-9)


def test_generator_step_computes_real_scores_only_for_a_loss_that_reads_them(make_model):
    """LossInputs.d_real is lazy: GAN-QP's G step never runs E on the real batch; RpGAN's does."""
    for loss, wanted in (("gan_qp", 1), ("rpgan", 2)):
        model = make_model(loss=loss)
        calls = []
        model.E.register_forward_hook(lambda *args, calls=calls: calls.append(1))
        model.generator_objective(torch.rand(4, 3, 32, 32) * 2 - 1, torch.randn(4, model.z_dim))
        assert len(calls) == wanted, loss


@pytest.mark.parametrize(
    "make", [lambda n: NSGAN(r1_gamma=2.0, reg_every=n), lambda n: RpGAN(r1_gamma=2.0, reg_every=n)]
)
def test_lazy_r1_every_n_steps_with_weight_times_n(make):
    """reg_every = 4: R1 on E updates 0, 4, 8, ... with 4x its weight, nothing (and no input gradient) between."""
    x = torch.randn(4, 3, 4, 4).requires_grad_(True)
    d_real = 0.5 * x.flatten(1).pow(2).sum(1)
    full = make(1).penalty(inputs(d_real, d_real, x_real=x))
    lazy = make(4)
    for step in range(9):
        pen = lazy.penalty(inputs(d_real, d_real, x_real=x, step=step))
        due = step % 4 == 0
        assert lazy.needs_real_grad(step) == due
        torch.testing.assert_close(pen, 4 * full if due else torch.zeros(4))


def test_lazy_wgan_gp_and_bad_reg_every():
    w = torch.randn(3 * 4 * 4)

    def disc(x):
        return x.flatten(1) @ w

    x_real, x_fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    s = inputs(disc(x_real), disc(x_fake), x_real=x_real, x_fake=x_fake, disc=disc)
    want = torch.full((5,), 10 * (w.norm().item() - 1) ** 2)
    torch.testing.assert_close(WGANGP(reg_every=3).penalty(s.replace(step=6)), 3 * want, rtol=1e-5, atol=1e-4)
    assert WGANGP(reg_every=3).penalty(s.replace(step=7)).eq(0).all()
    for bad in (0, -2, 1.5, True):
        with pytest.raises(UserError, match=r"loss.reg_every"):
            LOSSES.build({"_name_": "nsgan", "r1_gamma": 1.0, "reg_every": bad}, "loss")


def test_module_counts_e_updates_for_lazy_regularization(make_model):
    """With n_critic = 2 and reg_every = 3 the penalty lands on E updates 0, 3, 6, ... across
    iterations; the logged penalty is the last one computed, not the zeros in between."""
    model = make_model(**{"loss": "nsgan", "loss.r1_gamma": 1.0, "loss.reg_every": 3, "train.n_critic": 2})
    opt_e, opt_g = model.configure_optimizers()
    applied, logged = [], []
    penalty = model.objective.penalty

    def spy(s):
        value = penalty(s)
        applied.append((s.step, bool((value > 0).all())))
        return value

    model.objective.penalty = spy
    for _ in range(4):
        stats = model.train_iteration(torch.rand(16, 3, 32, 32) * 2 - 1, opt_e, opt_g, lambda loss: loss.backward())
        logged.append(float(stats["penalty"]))
    assert applied == [(k, k % 3 == 0) for k in range(8)]
    assert all(v > 0 for v in logged)
