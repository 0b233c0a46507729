"""lambda(t), the correlation weight's schedule (docs/method.md, "Scheduling lambda"): its values at
given iterations, the training step's losses under it, and E's and G's own lambdas (loss.corr_factor_e, corr_factor_g)."""

import math

import pytest
import torch

from ogan_pl.method.schedule import CorrSchedule, LRSchedule
from ogan_pl.registry.registries import LOSSES
from ogan_pl.utils.errors import UserError
from tests.test_losses import gan_qp_numpy


@pytest.mark.parametrize(
    "schedule, values",
    [
        # linear warm-up over 100 iterations: lambda * t / 100, then lambda
        (CorrSchedule(0.5, warmup=100), {0: 0.0, 1: 0.005, 25: 0.125, 99: 0.495, 100: 0.5, 5000: 0.5}),
        # cosine: lambda * (1 - cos(pi t / 100)) / 2
        (
            CorrSchedule(0.5, warmup=100, shape="cosine"),
            {
                0: 0.0,
                25: 0.25 * (1 - math.cos(math.pi / 4)),
                50: 0.25,
                75: 0.25 * (1 - math.cos(3 * math.pi / 4)),
                100: 0.5,
            },
        ),
        # every 4th iteration, weighted 4 x lambda: the same lambda on average
        (CorrSchedule(0.5, every=4), {0: 2.0, 1: 0.0, 2: 0.0, 3: 0.0, 4: 2.0, 402: 0.0, 404: 2.0}),
        # both: the warm-up's ramp on the iterations that carry the term
        (CorrSchedule(1.0, warmup=10, every=2), {0: 0.0, 1: 0.0, 4: 0.8, 5: 0.0, 10: 2.0, 11: 0.0}),
        (CorrSchedule(0.5), {0: 0.5, 7: 0.5, 10**6: 0.5}),
    ],
)
def test_schedule_values_at_given_iterations(schedule, values):
    for t, want in values.items():
        assert schedule(t) == pytest.approx(want, abs=1e-12), t


def test_schedule_averages_to_lambda_after_the_warm_up():
    for schedule in (CorrSchedule(0.5, every=4), CorrSchedule(0.5, every=3, warmup=30, shape="cosine")):
        n = 12 * schedule.every
        assert sum(schedule(t) for t in range(60, 60 + n)) / n == pytest.approx(0.5)
    assert CorrSchedule(0.5).constant
    assert not CorrSchedule(0.5, warmup=1).constant and not CorrSchedule(0.5, every=2).constant


@pytest.mark.parametrize("t", [0, 3, 30, 200])
def test_training_step_losses_use_lambda_of_the_iteration(make_model, t):
    """The module's E and G losses at generator iteration t equal the NumPy transcription with lambda(t)."""
    model = make_model(**{"loss.corr_warmup": 60, "loss.corr_warmup_shape": "cosine", "loss.corr_every": 3})
    model.g_iter = t
    lam = 0.5 * 3 * (0.5 * (1 - math.cos(math.pi * min(t, 60) / 60)) if t % 3 == 0 else 0.0)
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    z = torch.randn(8, model.z_dim)
    l_e, _ = model.encoder_objective(x, z, step=t)
    l_g, _ = model.generator_objective(x, z)
    with torch.no_grad():
        fake = model.G(z)
        e_real, e_fake = model.E(x).double().numpy(), model.E(fake).double().numpy()
    args = (e_real, e_fake, x.double().numpy(), fake.double().numpy(), z.double().numpy())
    assert model.objective.corr_factor_e == 2.0  # the small-image rule: E's lambda twice G's
    assert l_e.item() == pytest.approx(gan_qp_numpy(*args, 2.0 * lam)[0], rel=1e-4, abs=1e-6)
    assert l_g.item() == pytest.approx(gan_qp_numpy(*args, lam)[1], rel=1e-4, abs=1e-6)


def test_encoder_only_term_leaves_g_a_plain_gan(make_model):
    """corr_factor_g=0: E's loss keeps -lambda rho, G's is the adversarial loss alone."""
    both, enc = make_model(seed=3), make_model(seed=3, **{"loss.corr_factor_g": 0.0})
    x, z = torch.rand(8, 3, 32, 32) * 2 - 1, torch.randn(8, both.z_dim)
    plain = make_model(seed=3, **{"loss.corr_weight": 0.0})
    l_e_enc, l_e_both = enc.encoder_objective(x, z, step=0)[0].item(), both.encoder_objective(x, z, step=0)[0].item()
    assert l_e_enc == pytest.approx(l_e_both)
    assert enc.generator_objective(x, z)[0].item() == pytest.approx(plain.generator_objective(x, z)[0].item())
    assert enc.generator_objective(x, z)[0].item() != pytest.approx(both.generator_objective(x, z)[0].item())


@pytest.mark.parametrize("lam, factor_e, factor_g", [(0.5, 2.0, 1.0), (0.25, 1.0, 8.0), (0.5, 0.0, 1.0)])
def test_e_and_g_have_their_own_lambda(make_model, lam, factor_e, factor_g):
    """E's loss with corr_factor_e x lambda, G's with corr_factor_g x lambda, each equal to the NumPy
    transcription."""
    lam_e, lam_g = lam * factor_e, lam * factor_g
    model = make_model(
        seed=5, **{"loss.corr_weight": lam, "loss.corr_factor_e": factor_e, "loss.corr_factor_g": factor_g}
    )
    x, z = torch.rand(8, 3, 32, 32) * 2 - 1, torch.randn(8, model.z_dim)
    l_e, l_g = model.encoder_objective(x, z, step=0)[0].item(), model.generator_objective(x, z)[0].item()
    with torch.no_grad():
        fake = model.G(z)
        e_real, e_fake = model.E(x).double().numpy(), model.E(fake).double().numpy()
    args = (e_real, e_fake, x.double().numpy(), fake.double().numpy(), z.double().numpy())
    assert l_e == pytest.approx(gan_qp_numpy(*args, lam_e)[0], rel=1e-4, abs=1e-6)
    assert l_g == pytest.approx(gan_qp_numpy(*args, lam_g)[1], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"corr_warmup": -1}, "loss.corr_warmup"),
        ({"corr_warmup": 2.5}, "loss.corr_warmup"),
        ({"corr_every": 0}, "loss.corr_every"),
        ({"corr_warmup_shape": "exp"}, "loss.corr_warmup_shape"),
        ({"corr_factor_e": -1.0}, "loss.corr_factor_e"),
        ({"corr_factor_g": float("nan")}, "loss.corr_factor_g"),
    ],
)
def test_bad_schedule_values_are_one_line(kwargs, key):
    with pytest.raises(UserError, match=key):
        LOSSES.build({"_name_": "gan_qp", **kwargs}, "loss")


@pytest.mark.parametrize(
    "schedule, values",
    [
        # linear from half-way (iteration 50 of 100) down to 0.1: 1 - 0.9 (t - 50) / 50
        (
            LRSchedule("linear", start=0.5, final=0.1, total=100),
            {0: 1.0, 50: 1.0, 60: 0.82, 75: 0.55, 100: 0.1, 500: 0.1},
        ),
        # cosine over the whole run down to 0.2: 0.2 + 0.8 (1 + cos(pi t / 100)) / 2
        (
            LRSchedule("cosine", start=0.0, final=0.2, total=100),
            {0: 1.0, 25: 0.2 + 0.4 * (1 + math.cos(math.pi / 4)), 50: 0.6, 100: 0.2},
        ),
        (LRSchedule("none", total=100), {0: 1.0, 100: 1.0}),
    ],
)
def test_lr_schedule_values_at_given_iterations(schedule, values):
    for t, want in values.items():
        assert schedule(t) == pytest.approx(want, abs=1e-12), t
    assert schedule.constant == (schedule.shape == "none")


def test_training_step_sets_the_rates_of_the_iteration(make_model):
    """rate at iteration t = configured rate x f(t), for both optimizers; the configured rate is kept."""
    model = make_model(
        **{
            "optim.decay": "linear",
            "optim.decay_start": 0.5,
            "optim.decay_final": 0.1,
            "train.steps": 20,
            "optim.lr": 1e-3,
        }
    )
    model.train()
    opt_e, opt_g = model.configure_optimizers()
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    seen = []
    for t in range(20):
        assert model.g_iter == t
        model.train_iteration(x, opt_e, opt_g, lambda loss: loss.backward())
        seen.append([group["lr"] for opt in (opt_e, opt_g) for group in opt.param_groups])
    for t, rates in enumerate(seen):
        want = 1e-3 * (1.0 if t <= 10 else 1 - 0.9 * (t - 10) / 10)
        assert rates == pytest.approx([want] * len(rates), rel=1e-12), t
    assert all(g["initial_lr"] == 1e-3 for opt in (opt_e, opt_g) for g in opt.param_groups)


def test_a_run_resumed_inside_the_decay_is_bitwise_the_uninterrupted_one(run_script, tmp_path):
    """The whole run writes a checkpoint at iteration 5 (inside the decay); a second run directory
    holding only that checkpoint resumes from it (resume=auto) and ends where the whole run ends."""
    import shutil

    from tests.test_cli import TINY
    from tests.test_exact_resume import assert_bitwise_equal, final_state

    args = [
        *TINY,
        "logger=none",
        "train.steps=10",
        "optim.decay=cosine",
        "optim.decay_start=0.2",
        "callbacks.checkpoint.every_n_steps=5",
    ]
    run_script("train.py", *args, "hydra.run.dir=whole")
    (tmp_path / "parts/checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "whole/checkpoints/giter_0000005.ckpt", tmp_path / "parts/checkpoints/")
    proc = run_script("train.py", *args, "hydra.run.dir=parts")
    assert "resum" in (proc.stdout + proc.stderr).lower()
    assert_bitwise_equal(final_state(tmp_path / "parts"), final_state(tmp_path / "whole"))
    whole = torch.load(tmp_path / "whole/checkpoints/last.ckpt", weights_only=True)["optimizer_states"]
    assert whole[0]["param_groups"][0]["lr"] == pytest.approx(
        whole[0]["param_groups"][0]["initial_lr"] * LRSchedule("cosine", 0.2, 0.1, 10)(9)
    )


@pytest.mark.parametrize(
    "key, value", [("decay", "exp"), ("decay_start", 1.0), ("decay_final", 0), ("decay_final", 1.5)]
)
def test_bad_decay_values_are_one_line(run_script, key, value):
    proc = run_script("train.py", "logger=none", "train.steps=2", f"optim.{key}={value}", check=False)
    assert proc.returncode == 2 and f"optim.{key}" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
