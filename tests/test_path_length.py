"""Perceptual path length: slerp against SciPy's, the percentile filter against StyleGAN2-ADA's NumPy
formula, path lengths against closed forms on a linear generator, and the registered metrics."""

import numpy as np
import pytest
import torch

from ogan_pl.metrics import MetricContext, MetricSet
from ogan_pl.metrics.path_length import filtered_mean, lerp, path_lengths, slerp
from ogan_pl.utils.errors import UserError


def test_slerp_follows_the_great_circle_and_lerps_the_norm():
    from scipy.spatial import geometric_slerp

    gen = np.random.default_rng(0)
    a, b = gen.normal(size=(1, 6)) * 2, gen.normal(size=(1, 6)) * 0.5
    ts = np.linspace(0, 1, 7)
    got = slerp(torch.tensor(a).expand(7, -1), torch.tensor(b).expand(7, -1), torch.tensor(ts)[:, None]).numpy()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    want = geometric_slerp(a[0] / na, b[0] / nb, ts) * ((1 - ts) * na + ts * nb)[:, None]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_filtered_mean_is_stylegan2_adas_percentile_filter():
    values = np.random.default_rng(1).lognormal(size=1001)
    values[:3] = 1e9  # outliers the filter must drop
    low, high = np.percentile(values, 1, method="lower"), np.percentile(values, 99, method="higher")
    want = values[(values >= low) & (values <= high)].mean()
    assert filtered_mean(torch.tensor(values)) == pytest.approx(want, rel=1e-12)


class LinearG:
    """G(z) = W z as a (B, D, 1, 1) image; with d = squared L2, PPL has closed forms."""

    def __init__(self, weight: torch.Tensor):
        self.weight, self.z_dim, self.has_ema = weight, weight.shape[1], False

    def decode(self, z, use_ema=True):
        return (z.double() @ self.weight.T)[:, :, None, None]


def squared_l2(a, b):
    return (a - b).pow(2).flatten(1).sum(1)


def test_path_lengths_match_closed_forms_on_a_linear_generator():
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    a, b = (
        torch.randn(64, 4, generator=gen, dtype=torch.float64),
        torch.randn(64, 4, generator=gen, dtype=torch.float64),
    )
    # lerp: the path is straight, d / eps^2 = ||W (b - a)||^2 wherever t falls
    got = path_lengths(LinearG(weight), squared_l2, a, b, lerp, epsilon=1e-4, batch_size=10)
    want = ((b - a) @ weight.T).pow(2).sum(1)
    torch.testing.assert_close(got, want, rtol=5e-3, atol=0)  # float32 points: their difference carries ~1e-3
    # slerp between orthogonal codes of equal norm r, W = I: a quarter circle, speed r pi / 2
    r = 3.0
    u = torch.nn.functional.normalize(torch.randn(32, 4, generator=gen, dtype=torch.float64), dim=1)
    v = torch.nn.functional.normalize(torch.randn(32, 4, generator=gen, dtype=torch.float64), dim=1)
    v = torch.nn.functional.normalize(v - (u * v).sum(1, keepdim=True) * u, dim=1)
    for sampling in ("full", "end"):
        got = path_lengths(
            LinearG(torch.eye(4, dtype=torch.float64)), squared_l2, r * u, r * v, slerp, sampling=sampling
        )
        torch.testing.assert_close(
            got, torch.full((32,), (r * torch.pi / 2) ** 2, dtype=torch.float64), rtol=5e-3, atol=0
        )


def test_path_lengths_are_deterministic_given_the_seed():
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    a, b = torch.randn(16, 4, generator=gen), torch.randn(16, 4, generator=gen)

    def cubic(x, y):  # a distance whose value depends on where along the path t falls
        return (x.pow(3) - y.pow(3)).pow(2).flatten(1).sum(1)

    one = path_lengths(LinearG(weight), cubic, a, b, slerp, seed=3)
    assert torch.equal(one, path_lengths(LinearG(weight), cubic, a, b, slerp, seed=3))
    assert not torch.equal(one, path_lengths(LinearG(weight), cubic, a, b, slerp, seed=4))


@pytest.mark.parametrize(
    "options,message",
    [
        ({"sampling": "middle"}, "metrics.ppl_classifier.sampling='middle' must be one of: full, end"),
        ({"paths": ["w"]}, "metrics.ppl_classifier.paths[0]='w' must be one of: z, encoder"),
        ({"epsilon": 0}, "metrics.ppl_classifier.epsilon=0 must be a finite number > 0 and < 1 (e.g. 1e-4)"),
        ({"n_paths": 1}, "metrics.ppl_classifier.n_paths=1 must be an integer >= 2"),
    ],
)
def test_bad_ppl_options_are_one_line(options, message):
    with pytest.raises(UserError) as info:
        MetricSet(["ppl_classifier"], {"ppl_classifier": options})
    assert message in str(info.value)


def test_ppl_without_lpips_weights_names_the_missing_file(tmp_path):
    metrics = MetricSet(["ppl"])
    with pytest.raises(UserError, match=r"VGG16 ImageNet weights not found at .*lpips/vgg16-397923af\.pth"):
        metrics.setup(MetricContext(model=None, datamodule=None, cache_dir=str(tmp_path)))


def test_ppl_in_lpips_runs_both_paths_from_weights_files_the_test_makes(tmp_path):
    from tests.test_encoder_tools import _fake_lpips_files

    vgg_path, lin_path, _ = _fake_lpips_files(tmp_path)

    class Data:
        def holdout_batch(self, n):
            return {"image": torch.rand(min(n, 6), 3, 16, 16) * 2 - 1}

    class TinyModel(LinearG):
        recon_scale = 0.9

        def __init__(self):
            super().__init__(torch.randn(3 * 16 * 16, 8, generator=torch.Generator().manual_seed(0)) * 0.1)

        def decode(self, z, use_ema=True):
            return torch.tanh(z.float() @ self.weight.float().T).view(-1, 3, 16, 16)

        def latent(self, x, use_ema=True):
            code = x.flatten(1)[:, :8]
            return self.recon_scale * (code - code.mean(1, keepdim=True)) / code.std(1, keepdim=True)

        device = torch.device("cpu")

    metrics = MetricSet(["ppl"], {"ppl": {"n_paths": 20, "lpips_vgg": str(vgg_path), "lpips_weights": str(lin_path)}})
    ctx = MetricContext(model=TinyModel(), datamodule=Data(), batch_size=8, cache_dir=str(tmp_path))
    metrics.setup(ctx)
    scores, protocol = metrics.compute(ctx)
    assert set(scores) == {"ppl", "ppl_encoder"} and all(v > 0 and np.isfinite(v) for v in scores.values())
    assert protocol["ppl"]["distance"] == "LPIPS-VGG v0.1" and protocol["ppl"]["z"]["n_paths"] == 20
    assert protocol["ppl"]["encoder"]["pairs"] == "random pairs of 6 held-out images"
