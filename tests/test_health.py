"""The encoder's health measures (ogan_pl.metrics.health, ogan_pl.metrics.similarity) against
independent computations: PSNR and SSIM by their formulas (a loop over windows in NumPy) and
torchmetrics, the probes against scikit-learn, the ratios and the effective rank by hand, and the
collapse measure on generators that ignore their input."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ogan_pl.data import DigitsDataModule
from ogan_pl.metrics import MetricContext, MetricSet
from ogan_pl.metrics.health import diversity, effective_rank, fit_logistic, nearest_neighbour, recon_ratio
from ogan_pl.metrics.similarity import psnr, ssim


def ssim_numpy(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. (2004) on one 2-D image pair in [0, 1]: a loop over every 11 x 11 window inside the
    image, Gaussian-weighted moments (sigma 1.5), the mean of the index."""
    r = np.arange(11) - 5
    g = np.exp(-(r**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            mu_a, mu_b = (w * pa).sum(), (w * pb).sum()
            var_a, var_b = (w * pa * pa).sum() - mu_a**2, (w * pb * pb).sum() - mu_b**2
            cov = (w * pa * pb).sum() - mu_a * mu_b
            values.append((2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


def test_psnr_and_ssim_by_their_formulas():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(3, 2, 16, 14, generator=gen)
    b = (a + 0.1 * torch.randn(3, 2, 16, 14, generator=gen)).clamp(0, 1)
    mse = ((a.double() - b.double()) ** 2).flatten(1).mean(1)
    assert torch.allclose(psnr(a, b), 10 * torch.log10(1 / mse))
    want = [
        np.mean([ssim_numpy(a[i, c].double().numpy(), b[i, c].double().numpy()) for c in range(2)]) for i in range(3)
    ]
    assert ssim(a, b).numpy() == pytest.approx(want, abs=1e-5)
    assert ssim(a, a).numpy() == pytest.approx([1, 1, 1], abs=1e-6)
    assert ssim(a, b).numpy() == pytest.approx(ssim(b, a).numpy(), abs=1e-7)


def test_ssim_is_torchmetrics_of_reflect_padded_images():
    """torchmetrics pads by reflection and averages every window; ours of the padded images is the same."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    gen = torch.Generator().manual_seed(1)
    a = torch.rand(4, 1, 32, 32, generator=gen)
    b = (a + 0.2 * torch.randn(4, 1, 32, 32, generator=gen)).clamp(0, 1)
    padded = [F.pad(t, (5, 5, 5, 5), mode="reflect") for t in (b, a)]
    want = structural_similarity_index_measure(b, a, data_range=1.0, reduction="none")
    assert ssim(*padded).numpy() == pytest.approx(want.numpy(), abs=1e-5)


def test_ratios_and_effective_rank_by_hand():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]).view(3, 1, 1, 2)
    # pairs x_i, x_{i-1}: distances 10, 5, 5 -> mean 20/3
    x_hat = x + torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)  # every reconstruction 1 away
    assert recon_ratio(x, x_hat) == pytest.approx(1 / (20 / 3))
    assert diversity(x, x_hat) == pytest.approx(1.0)  # shifted together: the same spread
    assert diversity(x, torch.zeros_like(x)) == 0.0
    assert recon_ratio(x, x) == 0.0
    eye = torch.eye(8).repeat(4, 1) * 3.0
    assert effective_rank(eye) == pytest.approx(7.0, rel=1e-6)  # centred: 7 equal singular values
    line = torch.randn(100, 1) * torch.tensor([[1.0, 2.0, -1.0]])
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-6)


def test_logistic_probe_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 6, generator=gen) * 2
    labels = torch.randint(0, 4, (400,), generator=gen)
    x = centres[labels] + torch.randn(400, 6, generator=gen) * 1.5 + torch.tensor([5.0, 0, 0, 0, 0, -3.0])
    train, test = x[:300], x[300:]
    scaler = StandardScaler().fit(train.double().numpy())
    reference = LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit(
        scaler.transform(train.double().numpy()), labels[:300].numpy()
    )
    ours = fit_logistic(train, labels[:300], 4)(test).softmax(1).numpy()
    want = reference.predict_proba(scaler.transform(test.double().numpy()))
    assert ours == pytest.approx(want, abs=1e-5)


def test_nearest_neighbour_matches_scikit_learn():
    from sklearn.neighbors import KNeighborsClassifier

    gen = torch.Generator().manual_seed(2)
    train, test = torch.randn(500, 5, generator=gen), torch.randn(200, 5, generator=gen)
    labels = torch.randint(0, 7, (500,), generator=gen)
    want = KNeighborsClassifier(n_neighbors=1).fit(train.numpy(), labels.numpy()).predict(test.numpy())
    assert (nearest_neighbour(train, labels, test, chunk=64).numpy() == want).all()


class PCAWorld:
    """A model stand-in on the real digits: E(x) = the top-32 principal components of x; G(z) = the
    image of those components, or (`ignore_z`) always the training mean, or (`mode`) always one of a
    few digits of one class, as the collapsed run's reconstructions were mostly one "8"."""

    z_dim = 32
    device = torch.device("cpu")

    def __init__(self, train: torch.Tensor, ignore_z: bool = False, mode: torch.Tensor | None = None):
        flat = train.flatten(1).double()
        self.mean = flat.mean(0)
        self.basis = torch.linalg.svd(flat - self.mean, full_matrices=False)[2][: self.z_dim].T  # (D, 32)
        self.shape, self.ignore_z, self.mode = train.shape[1:], ignore_z, mode

    def encode(self, x, use_ema=True):
        return ((x.flatten(1).double() - self.mean) @ self.basis).float()

    def decode(self, z, use_ema=True):
        if self.ignore_z:
            return self.mean.float().expand(len(z), -1).reshape(len(z), *self.shape)
        if self.mode is not None:
            return self.mode[z.abs().sum(1).long() % len(self.mode)]
        return (z.double() @ self.basis.T + self.mean).float().reshape(len(z), *self.shape)

    def reconstruct(self, x, use_ema=True):
        return self.decode(self.encode(x), use_ema)


@pytest.fixture(scope="module")
def digits():
    data = DigitsDataModule(batch_size=64)
    data.setup()
    return data


def health_of(model, data) -> dict:
    metric_set = MetricSet(["health"], {"health": {"n_rho": 256, "n_probe_train": 2000}})
    ctx = MetricContext(model=model, datamodule=data, n_fake=2, batch_size=250)
    return metric_set.compute(ctx)[0]


def test_health_separates_a_faithful_encoder_from_collapsed_reconstructions(digits):
    train = digits.first_batch("train", 2000)
    eights = train["image"][train["label"] == 8][:5]
    healthy = health_of(PCAWorld(train["image"]), digits)
    ignores_z = health_of(PCAWorld(train["image"], ignore_z=True), digits)
    one_class = health_of(PCAWorld(train["image"], mode=eights), digits)
    print(f"healthy {healthy}\nignores z {ignores_z}\none class {one_class}")
    # PCA to 32 components reconstructs digits well and its codes separate the classes
    assert healthy["health/recon_ratio"] < 0.5 and healthy["health/diversity"] > 0.8
    assert healthy["health/psnr"] > 18 and healthy["health/ssim"] > 0.6
    assert healthy["health/rho"] > 0.99  # E(G(z)) = z exactly, up to rounding
    assert healthy["health/linear_probe"] > 0.8 and healthy["health/knn1"] > 0.85
    # a generator that ignores z: every reconstruction is the mean digit
    assert ignores_z["health/diversity"] == pytest.approx(0.0, abs=1e-6)
    assert abs(ignores_z["health/rho"]) < 0.05  # E(G(z)) is E(mean) = 0 up to rounding
    assert ignores_z["health/recon_ratio"] > healthy["health/recon_ratio"] + 0.2
    # reconstructions that are one of five "8"s: pixel diversity alone barely moves (digits of one class
    # differ about as much as any two digits), but the reconstructions no longer follow their inputs
    # and E no longer inverts G, which the ratio and rho show
    assert one_class["health/diversity"] < healthy["health/diversity"]
    assert one_class["health/recon_ratio"] > healthy["health/recon_ratio"] + 0.3
    assert abs(one_class["health/rho"]) < 0.1
    assert math.isfinite(one_class["health/ssim"])
