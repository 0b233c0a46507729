"""FID / KID / IS pipeline: numbers against independent computations, the real-statistics cache,
the Inception loading path (random weights written by the test), and DDP summation."""

import os
import pickle
import urllib.error

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from ogan_pl.metrics import ImageMetrics, InceptionFeatures, RealStats, find_inception_weights, prepare_real_stats
from ogan_pl.metrics import inception as inception_module
from ogan_pl.metrics.real_stats import cache_file, stats_key
from ogan_pl.utils.errors import UserError


class TinyFeatures(nn.Module):
    """A stand-in for Inception: the pixels of a 4x4 image are its 48 features."""

    num_features, num_logits, cache_key, protocol = 48, 10, "tiny-pixels", {}

    def forward(self, images):
        features = images.float().flatten(1) / 255
        return features, features[:, :10] * 5


def images(n: int, seed: int, shift: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    base = torch.randint(40, 200, (n, 3, 4, 4), generator=gen)
    return (base + shift).clamp(0, 255).to(torch.uint8)


def reference_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Independent FID: numpy moments and scipy's matrix square root."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def reference_kid(real: np.ndarray, fake: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel, all samples in one subset."""
    d = real.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    m = len(real)
    kxx, kyy, kxy = k(real, real), k(fake, fake), k(real, fake)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    )


def score(real, fake, names=("fid", "kid", "is"), **kwargs) -> dict:
    metrics = ImageMetrics(TinyFeatures(), names, **kwargs)
    metrics.update(real, real=True)
    metrics.update(fake, real=False)
    return metrics.compute()


def test_fid_and_kid_match_independent_computations():
    real, fake = images(400, 0), images(400, 1, shift=12)
    got = score(real, fake, kid_subsets=1, kid_subset_size=400)
    f_real, f_fake = (TinyFeatures()(x)[0].double().numpy() for x in (real, fake))
    assert got["fid"] == pytest.approx(reference_fid(f_real, f_fake), rel=1e-4)
    assert got["kid_mean"] == pytest.approx(reference_kid(f_real, f_fake), rel=1e-4)


def test_fid_and_kid_are_zero_for_a_set_against_itself_and_grow_with_a_shift():
    real = images(400, 0)
    same = score(real, real)
    fids, kids = [], []
    for shift in (5, 15, 40):
        got = score(real, images(400, 1, shift=shift))
        fids.append(got["fid"])
        kids.append(got["kid_mean"])
    assert abs(same["fid"]) < 1e-6 and 0.01 < fids[0] < fids[1] < fids[2]
    # the unbiased KID estimate of a set against itself is ~0 (slightly negative: the diagonal)
    assert abs(same["kid_mean"]) < 0.1 * kids[1] and 0 < kids[0] < kids[1] < kids[2]


@pytest.mark.filterwarnings("ignore:std\\(\\)")  # one split has no spread
def test_inception_score_matches_its_definition():
    fake = images(300, 2)
    got = score(images(10, 0), fake, names=("is",), is_splits=1)
    p = torch.softmax(TinyFeatures()(fake)[1].double(), 1)
    kl = (p * (p.log() - p.mean(0, keepdim=True).log())).sum(1).mean()
    assert got["is_mean"] == pytest.approx(kl.exp().item(), rel=1e-4)


def test_statistics_are_float64_and_autocast_does_not_reach_them():
    class LinearFeatures(TinyFeatures):  # a matmul, which a bf16 autocast would run in bf16
        def forward(self, x):
            f = torch.nn.functional.linear(x.float().flatten(1) / 255, torch.eye(48) * 1.001)
            return f, f[:, :10]

    real, fake = images(300, 0), images(300, 1, shift=3)
    plain = ImageMetrics(LinearFeatures(), ["fid"])
    under_autocast = ImageMetrics(LinearFeatures(), ["fid"])
    for metrics, ctx in (
        (plain, torch.autocast("cpu", enabled=False)),
        (under_autocast, torch.autocast("cpu", dtype=torch.bfloat16)),
    ):
        with ctx:
            metrics.update(real, real=True)
            metrics.update(fake, real=False)
    assert under_autocast.fid.real_features_sum.dtype == torch.float64
    assert under_autocast.compute()["fid"] == plain.compute()["fid"]


def test_grayscale_images_are_scored_as_rgb():
    gray = images(50, 0)[:, :1]
    metrics = ImageMetrics(TinyFeatures(), ["fid"])
    metrics.update(gray, real=True)
    assert int(metrics.fid.real_features_num_samples) == 50


def test_real_statistics_survive_reset_and_round_trip():
    metrics = ImageMetrics(TinyFeatures(), ["fid", "kid"])
    metrics.update(images(100, 0), real=True)
    stats = metrics.real_stats()
    metrics.update(images(100, 1), real=False)
    first = metrics.compute()
    metrics.reset()
    fresh = ImageMetrics(TinyFeatures(), ["fid", "kid"])
    fresh.set_real(stats)
    fresh.update(images(100, 1), real=False)
    torch.manual_seed(0)
    assert fresh.compute()["fid"] == pytest.approx(first["fid"])
    metrics.update(images(100, 1), real=False)  # after reset: same reals, same fakes again
    assert metrics.compute()["fid"] == pytest.approx(first["fid"])


# ------------------------------------------------------------------ cache
class PixelData:
    """Just enough of an ImageDataModule for prepare_real_stats."""

    def __init__(self, n=120, seed=0):
        self.train_set = [{"image": im} for im in images(n, seed)]
        self.seed = seed
        self.loads = 0

    def setup(self, stage=None):
        pass

    def identity(self):
        return {"class": "PixelData", "seed": self.seed}

    def real_dataloader(self, n=None, batch_size=None):
        self.loads += 1
        subset = self.train_set[:n]
        return [{"image": torch.stack([d["image"] for d in subset[i : i + 32]])} for i in range(0, len(subset), 32)]


def test_real_statistics_cache_hit_and_invalidation(tmp_path, caplog):
    data = PixelData()
    metrics = ImageMetrics(TinyFeatures(), ["fid"])
    info = prepare_real_stats(metrics, data, tmp_path, n_real=100)
    assert not info["real_stats_cached"] and data.loads == 1
    expected = metrics.real_stats()

    metrics = ImageMetrics(TinyFeatures(), ["fid"])
    info = prepare_real_stats(metrics, data, tmp_path, n_real=100)
    assert info["real_stats_cached"] and data.loads == 1
    assert torch.equal(metrics.real_stats().features_cov_sum, expected.features_cov_sum)

    # another number of images, or another dataset identity, is another file
    prepare_real_stats(ImageMetrics(TinyFeatures(), ["fid"]), data, tmp_path, n_real=50)
    assert data.loads == 2
    other = PixelData(seed=1)
    prepare_real_stats(ImageMetrics(TinyFeatures(), ["fid"]), other, tmp_path, n_real=100)
    assert other.loads == 1

    # KID needs the features themselves: an FID-only file is not enough
    kid = ImageMetrics(TinyFeatures(), ["fid", "kid"])
    assert not prepare_real_stats(kid, data, tmp_path, n_real=100)["real_stats_cached"]
    assert kid.real_stats().features.shape == (100, 48)
    assert prepare_real_stats(ImageMetrics(TinyFeatures(), ["kid"]), data, tmp_path, n_real=100)["real_stats_cached"]

    # a corrupt file is recomputed, never trusted
    path = cache_file(tmp_path, stats_key(data.identity(), "train", 100, "tiny-pixels"))
    path.write_bytes(b"garbage")
    metrics = ImageMetrics(TinyFeatures(), ["fid"])
    assert not prepare_real_stats(metrics, data, tmp_path, n_real=100)["real_stats_cached"]
    assert "unreadable" in caplog.text
    assert torch.allclose(metrics.real_stats().features_sum, expected.features_sum)
    # a file whose stored key differs (e.g. copied from elsewhere) is recomputed too
    blob = torch.load(path, weights_only=True)
    blob["key"]["num_images"] = 7
    torch.save(blob, path)
    assert not prepare_real_stats(ImageMetrics(TinyFeatures(), ["fid"]), data, tmp_path, n_real=100)[
        "real_stats_cached"
    ]
    assert prepare_real_stats(ImageMetrics(TinyFeatures(), ["fid"]), data, tmp_path, n_real=100)["real_stats_cached"]


# ------------------------------------------------------------------ DDP
def _ddp_worker(rank: int, world: int, port: int, real, fake, out):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    metrics = ImageMetrics(TinyFeatures(), ["fid", "kid", "prdc"], kid_subsets=1, kid_subset_size=100)
    if rank == 0:
        metrics.update(real, real=True)
    else:
        metrics.set_real(None)  # as inception_scores does: rank 0 alone holds the real statistics
    metrics.update(fake[rank::world], real=False)
    out[rank] = metrics.compute()
    dist.destroy_process_group()


def test_fid_kid_and_prdc_under_ddp_see_every_ranks_fakes_and_the_reals_once():
    import socket

    import torch.multiprocessing as mp

    real, fake = images(200, 0), images(200, 1, shift=10)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.Manager().dict()
    mp.spawn(_ddp_worker, args=(2, port, real, fake, out), nprocs=2)
    single = score(real, fake, names=("fid", "kid", "prdc"), kid_subsets=1, kid_subset_size=100)
    for rank in (0, 1):
        assert {k: v for k, v in out[rank].items() if not k.startswith("kid")} == pytest.approx(
            {k: v for k, v in single.items() if not k.startswith("kid")}, rel=1e-5
        )
        assert out[rank]["kid_mean"] > 0  # the subsets differ from one process's draw: not compared


# ------------------------------------------------------------------ the real Inception loading path
def test_missing_weights_error_names_the_file_the_url_and_both_fixes(torch_home_empty):
    with pytest.raises(UserError) as err:
        find_inception_weights(None, download=False)
    message = str(err.value)
    assert "\n" not in message
    assert inception_module.WEIGHTS_NAME in message and inception_module.WEIGHTS_URL in message
    assert str(torch_home_empty) in message and "metrics.inception_weights=PATH" in message
    with pytest.raises(UserError, match=r"metrics.inception_weights=/nowhere/w.pth does not exist"):
        find_inception_weights("/nowhere/w.pth")


def test_failed_download_is_one_line_error(torch_home_empty, monkeypatch):
    def offline(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UserError, match=r"download failed .*URLError.* metrics.inception_weights=PATH"):
        find_inception_weights(None, download=True)


def test_weights_found_in_the_torch_hub_cache(torch_home):
    assert (
        find_inception_weights(None, download=False) == torch_home / "hub/checkpoints" / inception_module.WEIGHTS_NAME
    )


def test_inception_features_match_torch_fidelity_and_give_fid(inception_weights):
    """Our extractor on the real torchmetrics / torch-fidelity code: same features as torch-fidelity's
    own extractor (the TF1-compatible resize), both heads, and FID through the real network."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    net = InceptionFeatures.load(inception_weights)
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    features, logits = net(x)
    assert features.shape == (4, 2048) and logits.shape == (4, 1008)
    reference = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(inception_weights)
    )
    ref_features, ref_logits = reference(x)
    torch.testing.assert_close(features, ref_features, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-4, atol=1e-5)
    antialiased, _ = InceptionFeatures.load(inception_weights, antialias=True)(x)
    assert not torch.allclose(antialiased, features)  # the flag reaches the resize

    metrics = ImageMetrics(net, ["fid"])
    metrics.update(x, real=True)
    metrics.update(x.flip(-1).roll(8, -2), real=False)
    assert np.isfinite(metrics.compute()["fid"]) and metrics.compute()["fid"] > 0


def test_weights_file_with_a_pickle_payload_is_refused(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"fc.weight": Payload()}, f)
    with pytest.raises(UserError, match="cannot read the Inception weights"):
        InceptionFeatures.load(path)
    assert not marker.exists()


def test_real_stats_dataclass_rejects_inconsistent_shapes():
    ok = RealStats(torch.zeros(3, dtype=torch.float64), torch.zeros(3, 3, dtype=torch.float64), 5, torch.zeros(5, 3))
    assert ok.is_consistent()
    assert not RealStats(ok.features_sum, torch.zeros(2, 2, dtype=torch.float64), 5).is_consistent()
    assert not RealStats(ok.features_sum, ok.features_cov_sum, 5, torch.zeros(4, 3)).is_consistent()


# ------------------------------------------------------------------ encoder metrics
class FixedReconstruction:
    """A stand-in model whose reconstruction is x + offset."""

    def __init__(self, offset: float):
        self.offset = offset

    def reconstruct(self, x, use_ema=True):
        return x + self.offset


def test_reconstruction_psnr_ssim_against_hand_computation():
    from ogan_pl.metrics import reconstruction_error

    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0)) - 0.5  # in [-0.5, 0.5]
    got = reconstruction_error(FixedReconstruction(0.1), x)
    assert got["recon/mse"] == pytest.approx(0.01, rel=1e-4)
    # on [0, 1] the error is 0.05: PSNR = 10 log10(1 / 0.05^2)
    assert got["recon/psnr"] == pytest.approx(10 * np.log10(1 / 0.05**2), rel=1e-4)
    assert 0.5 < got["recon/ssim"] < 1
    perfect = reconstruction_error(FixedReconstruction(0.0), x)
    assert perfect["recon/ssim"] == pytest.approx(1.0, abs=1e-5) and perfect["recon/specificity_ratio"] == 0
