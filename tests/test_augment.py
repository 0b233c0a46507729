"""augment=diffaug: each transform against an independent computation, gradients through it, where
O-GAN applies it (E and G steps, never reconstructions), and its one-line errors."""

import pytest
import torch

from ogan_pl.method.augment import DiffAugment, brightness, contrast, cutout, saturation, translation
from ogan_pl.registry.registries import AUGMENTS
from ogan_pl.utils.errors import UserError


def test_translation_is_an_integer_shift_with_zeros_entering():
    """Every output image is its input shifted by some (dy, dx) within the ratio, found by trying
    every shift with slicing."""
    torch.manual_seed(0)
    x = torch.randn(16, 2, 8, 8) + 5  # no zeros inside the images
    out = translation(x, 0.25)
    shifts = set()
    for img, res in zip(x, out, strict=True):
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                want = torch.zeros_like(img)
                ys, yd = (slice(dy, 8), slice(0, 8 - dy)) if dy >= 0 else (slice(0, 8 + dy), slice(-dy, 8))
                xs, xd = (slice(dx, 8), slice(0, 8 - dx)) if dx >= 0 else (slice(0, 8 + dx), slice(-dx, 8))
                want[:, yd, xd] = img[:, ys, xs]
                if torch.equal(res, want):
                    matches.append((dy, dx))
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 5  # a new shift per image


def test_cutout_zeroes_one_clipped_square():
    torch.manual_seed(1)
    x = torch.randn(32, 3, 10, 10) + 5
    out = cutout(x, 0.4)  # squares of 4 x 4, clipped at the border
    for img, res in zip(x, out, strict=True):
        zero = (res == 0).all(0)
        assert (res[:, ~zero] == img[:, ~zero]).all()
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 4 and 1 <= len(cols) <= 4
        assert zero.sum() == len(rows) * len(cols)  # a rectangle: the square, clipped
        assert rows.diff().eq(1).all() and cols.diff().eq(1).all()
        assert len(rows) == 4 or rows[0] == 0 or rows[-1] == 9
        assert len(cols) == 4 or cols[0] == 0 or cols[-1] == 9


def test_color_transforms():
    """Brightness adds one offset in [-0.5, 0.5) per image; contrast scales the deviation from the
    image mean by [0.5, 1.5), saturation the deviation from the grey value by [0, 2)."""
    torch.manual_seed(2)
    x = torch.randn(256, 3, 4, 4)
    shift = brightness(x) - x
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)
    assert shift.min() >= -0.5 and shift.max() < 0.5 and shift.max() - shift.min() > 0.9
    for transform, dims, (low, high) in ((contrast, (1, 2, 3), (0.5, 1.5)), (saturation, (1,), (0.0, 2.0))):
        mean, out = x.mean(dims, keepdim=True), transform(x)
        torch.testing.assert_close(out.mean(dims, keepdim=True), mean)
        factor = ((out - mean) * (x - mean)).flatten(1).sum(1) / (x - mean).pow(2).flatten(1).sum(1)
        torch.testing.assert_close((out - mean), factor.view(-1, 1, 1, 1) * (x - mean), atol=1e-5, rtol=1e-5)
        assert factor.min() >= low - 1e-6 and factor.max() < high and factor.max() - factor.min() > 0.8 * (high - low)
    grey = torch.randn(4, 1, 4, 4)
    torch.testing.assert_close(saturation(grey), grey)  # nothing to saturate in one channel


def test_diffaug_is_differentiable_and_random_per_image():
    torch.manual_seed(3)
    x = torch.randn(8, 3, 16, 16, requires_grad=True)
    out = DiffAugment()(x)
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    same = DiffAugment()(x.detach()[:1].expand(8, -1, -1, -1))
    assert not torch.equal(same[0], same[1])


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"policy": "color,rotate"}, "augment.policy"),
        ({"policy": ""}, "augment.policy"),
        ({"cutout_ratio": 1.5}, "augment.cutout_ratio"),
        ({"rho_on": "both"}, "augment.rho_on"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, key):
    with pytest.raises(UserError, match=key):
        AUGMENTS.build({"_name_": "diffaug", **kwargs}, "augment")


class Spy:
    """The module's augmentation, counting its calls."""

    def __init__(self, inner):
        self.inner, self.rho_on, self.calls = inner, inner.rho_on, 0

    def __call__(self, x, generator=None):
        self.calls += 1
        return self.inner(x, generator)


@pytest.mark.parametrize("update", ["alternating", "joint"])
@pytest.mark.parametrize("rho_on", ["augmented", "clean"])
def test_oganmodule_augments_what_e_sees_in_training_only(make_model, update, rho_on):
    """Both steps see augmented images (G's gradient passes through A); reconstructions and
    samples never do; rho reads E(A(G(z))) or E(G(z)) as configured."""
    model = make_model(**{"augment": "diffaug", "augment.rho_on": rho_on, "train.update": update})
    model.augment = spy = Spy(model.augment)
    x, z = torch.rand(8, 3, 32, 32) * 2 - 1, torch.randn(8, 16)
    if update == "joint":
        loss, _stats = model.joint_objective(x, z, step=0)
        assert spy.calls == 2  # the reals, and one draw for both copies of the fakes
    else:
        model.encoder_objective(x, z, step=0)
        assert spy.calls == 2
        loss, _ = model.generator_objective(x, z)
        assert spy.calls == 3
    model.zero_grad()
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.G.parameters())
    if update == "alternating":  # G's gradient through A alone (the adversarial term; lambda = 0 for it)
        model.zero_grad()
        model.objective.corr_weight = 0.0
        model.generator_objective(x, z)[0].backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.G.parameters())
    fake = model.G(z).detach()
    code = model.rho_code(fake, torch.zeros(8, 16))
    assert torch.equal(code, torch.zeros(8, 16)) == (rho_on == "augmented")
    spy.calls = 0
    model.eval()
    model.reconstruct(x[:2])
    model.decode(z[:2])
    model.encode(x[:2])
    assert spy.calls == 0


def test_joint_update_keeps_the_reference_t2_term_zero_under_augmentation(make_model):
    """One draw of A for G(z) and its stop-gradient copy: adv_G(d_fake) - adv_G(d_fake_ng) is 0."""
    model = make_model(**{"augment": "diffaug", "train.update": "joint"})
    captured = {}
    joint_loss = model.objective.joint_loss

    def spy(s, d_fake_g):
        captured["diff"] = (d_fake_g - s.d_fake).detach()
        return joint_loss(s, d_fake_g)

    model.objective.joint_loss = spy
    model.joint_objective(torch.rand(8, 3, 32, 32) * 2 - 1, torch.randn(8, 16), step=0)
    assert torch.equal(captured["diff"], torch.zeros(8))


def test_draws_follow_the_iteration_not_the_global_rng(make_model):
    """A's draws come from the per-iteration generator of the noise: the same generator iteration
    augments the same way whatever the global RNG did (so a resumed run augments as an
    uninterrupted one), and the next iteration differently."""
    model = make_model(augment="diffaug")
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    model.g_iter = 5
    model._seed_noise()
    first = model.augmented(x)
    torch.manual_seed(123)
    torch.rand(10)
    model._seed_noise()
    torch.testing.assert_close(model.augmented(x), first, rtol=0, atol=0)
    model.g_iter = 6
    model._seed_noise()
    assert not torch.equal(model.augmented(x), first)
