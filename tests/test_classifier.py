"""The built-in digits, the domain classifier and the classifier-based metrics."""

import numpy as np
import pytest
import scipy.linalg
import torch

from ogan_pl.data.digits import DigitsDataModule, load_digits
from ogan_pl.metrics.classifier_metrics import class_inception_score, frechet_distance, kernel_inception_distance
from ogan_pl.metrics.domain_classifier import ClassifierSpec, cache_key, cache_path, load_or_train

FAST = ClassifierSpec(width=8, feature_dim=32, epochs=1, batch_size=256)


def test_digits_ship_with_the_package_split_fixed_and_stratified():
    images, labels = load_digits()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8 and set(labels) == set(range(10))
    dm = DigitsDataModule(batch_size=8, holdout_size=1000, seed=1)
    dm.setup()
    assert len(dm.train_set) == 9000 and len(dm.holdout_set) == 1000
    item = dm.train_set[0]
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype == torch.uint8
    assert item["image"][:, :2].max() == 0 and item["image"][:, :, :2].max() == 0  # the 2-px padding
    holdout_labels = torch.stack([dm.holdout_set[i]["label"] for i in range(1000)])
    counts = torch.bincount(holdout_labels, minlength=10)
    assert counts.min() >= 85 and counts.max() <= 115  # about 100 per class: stratified
    other_seed = DigitsDataModule(batch_size=8, holdout_size=1000, seed=2)
    other_seed.setup()
    assert torch.equal(other_seed.holdout_set[5]["image"], dm.holdout_set[5]["image"])  # same split in every run
    train_ids = {bytes(dm.train_set[i]["image"].numpy()) for i in range(len(dm.train_set))}
    assert not any(bytes(dm.holdout_set[i]["image"].numpy()) in train_ids for i in range(50))
    small = DigitsDataModule(batch_size=8, train_size=1000)
    small.setup()
    assert len(small.train_set) == 1000 and small.identity() != dm.identity()
    # a small-data run is judged against the whole dataset: the same classifier and real images
    from ogan_pl.metrics.domain_classifier import ClassifierSpec, cache_key

    whole = small.reference()
    whole.setup()
    assert len(whole.train_set) == 9000 and whole.identity() == DigitsDataModule(batch_size=8).identity()
    assert cache_key(whole, ClassifierSpec()) == cache_key(DigitsDataModule(batch_size=8), ClassifierSpec())
    assert dm.reference() is dm and len(small.train_set) == 1000


def test_frechet_distance_equals_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 12))
    b = rng.normal(size=(400, 12)) @ rng.normal(size=(12, 12)) * 0.5 + 0.3
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    want = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * scipy.linalg.sqrtm(cov_a @ cov_b).real)
    assert frechet_distance(torch.tensor(a), torch.tensor(b)) == pytest.approx(want, rel=1e-6)
    assert frechet_distance(torch.tensor(a), torch.tensor(a)) == pytest.approx(0, abs=1e-8)


def test_kid_equals_numpy_unbiased_mmd():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(60, 5)), rng.normal(0.5, 1, size=(50, 5))
    got, std = kernel_inception_distance(torch.tensor(a), torch.tensor(b), subsets=1, subset_size=50)
    # with one subset of 50 from each: recompute on the same draw
    gen = torch.Generator().manual_seed(0)
    x = a[torch.randperm(60, generator=gen)[:50].numpy()]
    y = b[torch.randperm(50, generator=gen)[:50].numpy()]
    k = lambda p, q: (p @ q.T / 5 + 1) ** 3  # noqa: E731
    m = 50
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    want = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    assert got == pytest.approx(want, rel=1e-9) and std == 0


def test_class_inception_score_equals_numpy():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(200, 10)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    py = p.mean(0)
    want = np.exp(np.mean((p * (np.log(p) - np.log(py))).sum(1)))
    assert class_inception_score(torch.tensor(p)) == pytest.approx(want, rel=1e-9)
    confident = torch.eye(10).repeat(20, 1)  # every class, each with certainty: IS = 10
    assert class_inception_score(confident) == pytest.approx(10, rel=1e-6)
    one_class = torch.zeros(50, 10)
    one_class[:, 3] = 1
    assert class_inception_score(one_class) == pytest.approx(1, rel=1e-6)


def test_classifier_learns_digits_and_its_cache_is_refused_when_corrupt_or_mismatched(tmp_path, caplog):
    dm = DigitsDataModule(batch_size=8, holdout_size=500)
    model, record = load_or_train(dm, tmp_path, FAST)
    assert not record["cached"] and record["holdout_accuracy"] > 0.7  # 1 epoch of a tiny CNN (measured 0.81)
    again, record2 = load_or_train(dm, tmp_path, FAST)
    assert record2["cached"] and record2["holdout_accuracy"] == record["holdout_accuracy"]
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    path = cache_path(tmp_path, cache_key(dm, FAST))

    path.write_bytes(path.read_bytes()[:1000])  # truncated: retrained, never trusted
    _, record3 = load_or_train(dm, tmp_path, FAST)
    assert not record3["cached"] and "ignoring the cached classifier" in caplog.text

    stored = torch.load(path, weights_only=True)  # a file for another dataset under this name
    stored["key"]["dataset"]["holdout_size"] = 123
    torch.save(stored, path)
    caplog.clear()
    _, record4 = load_or_train(dm, tmp_path, FAST)
    assert not record4["cached"] and "does not match" in caplog.text

    class Payload:
        def __reduce__(self):
            import os

            return os.system, (f"touch {tmp_path / 'PWNED'}",)

    torch.save({"key": cache_key(dm, FAST), "state_dict": Payload()}, path)
    _, record5 = load_or_train(dm, tmp_path, FAST)
    assert not record5["cached"] and not (tmp_path / "PWNED").exists()
