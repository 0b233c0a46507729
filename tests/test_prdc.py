"""Precision, recall, density, coverage: the chunked torch computation against brute-force NumPy
(ties and duplicates included), the known case of two samples of one Gaussian, and the metrics
that report them (Inception's pass shared with FID, the domain classifier's features)."""

import numpy as np
import pytest
import torch

from ogan_pl.metrics import ImageMetrics, RealStats
from ogan_pl.metrics.prdc import knn_radii, prdc
from tests.test_metrics import TinyFeatures, images


def brute_force(real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5) -> dict[str, float]:
    """The definitions, with full distance matrices (closed balls: distance <= radius)."""
    dist = lambda a, b: np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))  # noqa: E731
    d_rr, d_ff, d_rf = dist(real, real), dist(fake, fake), dist(real, fake)
    r_real = np.sort(d_rr, axis=1)  # column 0: the point itself
    r_fake = np.sort(d_ff, axis=1)
    return {
        "precision": (d_rf <= r_real[:, [k_pr]]).any(0).mean(),
        "recall": (d_rf <= r_fake[:, k_pr][None, :]).any(1).mean(),
        "density": (d_rf <= r_real[:, [k_dc]]).sum(0).mean() / k_dc,
        "coverage": (d_rf.min(1) <= r_real[:, k_dc]).mean(),
    }


def test_matches_brute_force_with_ties_and_duplicates_in_any_chunking():
    gen = np.random.default_rng(0)
    real = gen.integers(0, 6, (80, 3)).astype(np.float64)  # a small grid: duplicates, many equal distances
    fake = np.r_[gen.integers(2, 9, (50, 3)), real[:10]].astype(np.float64)  # some exact copies of real points
    want = brute_force(real, fake)
    for chunk in (7, 64, 4096):
        got = prdc(torch.tensor(real), torch.tensor(fake), chunk=chunk)
        assert got == pytest.approx(want, abs=1e-12), chunk
    assert len(np.unique(real, axis=0)) < len(real)  # duplicates really are there
    assert all(0 < v < 1 for v in want.values())  # 0.43, 0.84, 0.57, 0.75: no measure saturated


def test_float32_features_match_brute_force_on_continuous_data():
    gen = np.random.default_rng(1)
    real, fake = gen.normal(size=(300, 16)), gen.normal(0.3, 1.2, size=(250, 16))
    got = prdc(torch.tensor(real, dtype=torch.float32), torch.tensor(fake, dtype=torch.float32), chunk=100)
    assert got == pytest.approx(brute_force(real, fake), abs=1 / 250)  # at most one borderline point apart


def test_knn_radii_exclude_the_point_itself_but_count_a_duplicate():
    x = torch.tensor([[0.0], [0.0], [1.0], [3.0]], dtype=torch.float64)
    radii = knn_radii(x, (1, 2))
    assert radii[1].tolist() == [0.0, 0.0, 1.0, 2.0] and radii[2].tolist() == [1.0, 1.0, 1.0, 3.0]
    with pytest.raises(ValueError, match="need at least 4 feature vectors"):
        knn_radii(x[:3], (3,))


def test_two_samples_of_one_gaussian_and_the_ways_to_fail():
    """Same distribution: density near 1 and coverage near 1 - 2^-k (Naeem et al. 2020); a
    generator that drops half the modes keeps its precision and loses recall and coverage; one that
    is off the data loses precision and density."""
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(3000, 8, generator=gen), torch.randn(3000, 8, generator=gen)
    same = prdc(real, fake)
    assert same["density"] == pytest.approx(1.0, abs=0.05)
    assert same["coverage"] == pytest.approx(1 - 2**-5, abs=0.02)
    assert same["precision"] > 0.7 and same["recall"] > 0.7
    # measured (seed 0): same 0.90 / 0.89 / 0.99 / 0.969; half 0.89 / 0.63 / 0.98 / 0.66; off 0.25 / 0.32 / 0.13 / 0.09
    half = prdc(real, fake[fake[:, 0] > 0])  # mode dropping: half the space never generated
    assert half["precision"] > same["precision"] - 0.05 and half["density"] > same["density"] - 0.05
    assert half["recall"] < same["recall"] - 0.15 and half["coverage"] < same["coverage"] - 0.2
    off = prdc(real, fake + 1.5)  # off the data
    assert off["precision"] < 0.5 * same["precision"] and off["density"] < 0.3 and off["recall"] < 0.5 * same["recall"]


def test_inception_prdc_shares_the_pass_and_survives_reset_and_the_cache():
    real, fake = images(200, 0), images(150, 1, shift=20)
    metrics = ImageMetrics(TinyFeatures(), ["fid", "prdc"], prdc_chunk=32)
    metrics.update(real, real=True)
    metrics.update(fake, real=False)
    got = metrics.compute()
    f_real, f_fake = (TinyFeatures()(x)[0].double().numpy() for x in (real, fake))
    want = brute_force(f_real, f_fake)
    assert {k: got[f"prdc_{k}"] for k in want} == pytest.approx(want, abs=1 / 150)
    stats = metrics.real_stats()
    assert isinstance(stats, RealStats) and stats.features.shape == (200, 48)
    metrics.reset()
    metrics.update(fake, real=False)
    assert metrics.compute()["prdc_precision"] == got["prdc_precision"]  # the real features stayed
    fresh = ImageMetrics(TinyFeatures(), ["prdc"])
    fresh.set_real(stats)
    fresh.update(fake, real=False)
    assert fresh.compute()["prdc_coverage"] == pytest.approx(got["prdc_coverage"])
    with pytest.raises(ValueError, match="need the real features"):
        ImageMetrics(TinyFeatures(), ["prdc"]).set_real(RealStats(stats.features_sum, stats.features_cov_sum, 200))


def test_metric_bench_prints_a_row_per_setting_and_refuses_bad_input(capsys):
    from ogan_pl.tools.metric_bench import main

    assert main(["--n", "40", "--dim", "4", "8", "--chunk", "16", "--device", "cpu"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 40 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["4", "8"]
    with pytest.raises(SystemExit) as info:
        main(["--n", "5"])
    assert info.value.code == 2 and "--n must be at least 6" in capsys.readouterr().err
