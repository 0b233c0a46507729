"""FID, KID and Inception Score (torchmetrics) from one feature-extractor pass per batch.

Protocol (what makes the numbers comparable with published ones): generated images in [-1, 1]
are rounded and clamped to uint8 (never truncated); the extractor resizes them to 299 as
torch-fidelity does; feature statistics are accumulated in float64 with autocast disabled.
"""

import logging
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics import Metric as TorchMetric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities import dim_zero_cat

from ogan_pl.data.convert import to_uint8
from ogan_pl.metrics.base import Metric, MetricContext
from ogan_pl.metrics.inception import InceptionFeatures
from ogan_pl.metrics.prdc import knn_radii, prdc
from ogan_pl.metrics.real_stats import RealStats, cache_file, load_cached, save_cached, stats_key
from ogan_pl.registry.registries import METRICS
from ogan_pl.registry.values import PositiveInt, at_least

log = logging.getLogger(__name__)

IMAGE_METRICS = ("fid", "kid", "is", "prdc")


class _Precomputed(nn.Module):
    """The torchmetrics metrics' "feature network": the features were already extracted."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


class FeatureSets(TorchMetric):
    """The real and generated features themselves (for precision / recall / density / coverage),
    gathered over ranks; `reset()` forgets the generated ones only. Each list starts with a (0, D)
    tensor, so a rank without features gathers with the same number of dimensions as the others."""

    full_state_update = False

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features
        self.add_state("real", [], dist_reduce_fx="cat")
        self.add_state("fake", [], dist_reduce_fx="cat")
        self.real.append(self.empty())
        self.fake.append(self.empty())

    def empty(self) -> Tensor:
        return torch.empty(0, self.num_features, device=self.device)

    def update(self, features: Tensor, real: bool) -> None:
        (self.real if real else self.fake).append(features)

    def compute(self) -> tuple[Tensor, Tensor]:
        return dim_zero_cat(self.real), dim_zero_cat(self.fake)

    def reset(self) -> None:
        real = list(self.real)  # torchmetrics clears list states in place
        super().reset()
        self.real = real
        self.fake.append(self.empty())


def no_autocast(device: torch.device):
    return torch.autocast(device_type=device.type, enabled=False)


class ImageMetrics(nn.Module):
    """Accumulates real and generated images; `compute()` gives the selected metrics.

    `extractor(uint8 images) -> (features (N, D), logits (N, K))`, with `num_features`,
    `num_logits` and `cache_key` attributes (see InceptionFeatures). Real statistics survive
    `reset()`, so they are set once (from the cache) and reused for every evaluation.
    """

    def __init__(
        self,
        extractor: nn.Module,
        names: Iterable[str] = IMAGE_METRICS,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        is_splits: int = 10,
        prdc_k: tuple[int, int] = (3, 5),
        prdc_chunk: int = 2048,
    ):
        super().__init__()
        self.names = tuple(names)
        unknown = set(self.names) - set(IMAGE_METRICS)
        if unknown:
            raise ValueError(f"unknown image metrics {sorted(unknown)}; choose from {IMAGE_METRICS}")
        self.extractor = extractor
        d = extractor.num_features
        self.fid = FrechetInceptionDistance(feature=_Precomputed(d), reset_real_features=False)
        with warnings.catch_warnings():  # "will save all extracted features": that is what KID and IS need
            warnings.filterwarnings("ignore", message=".*will save all extracted features")
            self.kid = (
                KernelInceptionDistance(
                    feature=_Precomputed(d), subsets=kid_subsets, subset_size=kid_subset_size, reset_real_features=False
                )
                if "kid" in self.names
                else None
            )
            self.inception_score = (
                InceptionScore(feature=_Precomputed(extractor.num_logits), splits=is_splits)
                if "is" in self.names
                else None
            )
        self.kid_subset_size = kid_subset_size
        self.feature_sets = FeatureSets(d) if "prdc" in self.names else None
        self.prdc_k, self.prdc_chunk = prdc_k, prdc_chunk
        self._real_radii: dict[int, Tensor] | None = None

    @property
    def device(self) -> torch.device:
        return self.fid.real_features_sum.device

    @property
    def needs_real(self) -> bool:
        return bool({"fid", "kid", "prdc"} & set(self.names))

    @property
    def needs_real_features(self) -> bool:
        return self.kid is not None or self.feature_sets is not None

    @torch.no_grad()
    def update(self, images: Tensor, real: bool) -> None:
        """images: uint8 (N, C, H, W), C = 1 or 3."""
        images = images.to(self.device)
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        with no_autocast(images.device):
            features, logits = self.extractor(images)
            features, logits = features.float(), logits.float()
            self.fid.update(features, real=real)
            if self.kid is not None:
                self.kid.update(features, real=real)
            if self.feature_sets is not None:
                self.feature_sets.update(features, real=real)
            if self.inception_score is not None and not real:
                self.inception_score.update(logits)

    def real_stats(self) -> RealStats:
        fid = self.fid
        store = (
            self.kid.real_features
            if self.kid is not None
            else (self.feature_sets.real if self.feature_sets is not None else [])
        )
        features = torch.cat(store) if store else None
        features = features if features is not None and len(features) else None
        return RealStats(
            fid.real_features_sum.clone(),
            fid.real_features_cov_sum.clone(),
            int(fid.real_features_num_samples),
            features,
        )

    def set_real(self, stats: RealStats | None) -> None:
        """Install real statistics; None clears them (under DDP only one rank holds them, as the
        metric states are summed over ranks)."""
        fid, device = self.fid, self.device
        if stats is None:
            fid.real_features_sum.zero_()
            fid.real_features_cov_sum.zero_()
            fid.real_features_num_samples.zero_()
        else:
            fid.real_features_sum.copy_(stats.features_sum)
            fid.real_features_cov_sum.copy_(stats.features_cov_sum)
            fid.real_features_num_samples.fill_(stats.num_samples)
        if self.needs_real_features and stats is not None and stats.features is None:
            raise ValueError("KID and PRDC need the real features; compute the real statistics with one selected")
        # a rank without real features holds a (0, D) tensor: the ranks gather tensors of the same rank
        features = (
            [torch.empty(0, self.extractor.num_features, device=device)]
            if stats is None or (stats.features is None)
            else [stats.features.to(device, torch.float32)]
        )
        if self.kid is not None:
            self.kid.real_features = list(features)
        if self.feature_sets is not None:
            self.feature_sets.real = list(features)
        self._real_radii = None

    @torch.no_grad()
    def compute(self) -> dict[str, float]:
        out = {}
        with no_autocast(self.device):
            if "fid" in self.names:
                out["fid"] = self.fid.compute().item()
            if self.kid is not None:
                counts = torch.tensor(
                    [sum(len(f) for f in self.kid.real_features), int(self.fid.fake_features_num_samples)],
                    device=self.device,
                )
                if torch.distributed.is_available() and torch.distributed.is_initialized():
                    torch.distributed.all_reduce(counts)  # the subsets are drawn from every rank's features
                self.kid.subset_size = min(self.kid_subset_size, *counts.tolist())
                mean, std = self.kid.compute()
                out["kid_mean"], out["kid_std"] = mean.item(), std.item()
            if self.inception_score is not None:
                mean, std = self.inception_score.compute()
                out["is_mean"], out["is_std"] = mean.item(), std.item()
            if self.feature_sets is not None:
                real, fake = self.feature_sets.compute()
                if self._real_radii is None:  # the real features do not change between evaluations
                    self._real_radii = knn_radii(real, self.prdc_k, self.prdc_chunk)
                scores = prdc(real, fake, *self.prdc_k, self.prdc_chunk, self._real_radii)
                out.update({f"prdc_{name}": value for name, value in scores.items()})
        return out

    def reset(self) -> None:
        """Forget the generated images; keep the real statistics."""
        for metric in (self.fid, self.kid, self.inception_score, self.feature_sets):
            if metric is not None:
                metric.reset()


def fake_noise(n: int, z_dim: int, seed: int, rank: int = 0, world_size: int = 1) -> Tensor:
    """This rank's share of n fixed noise vectors: the same n images whatever the number of ranks."""
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    return z[rank::world_size]


@torch.no_grad()
def add_generated(
    metrics: ImageMetrics,
    model,
    z: Tensor,
    batch_size: int,
    use_ema: bool = True,
    autocast_dtype: torch.dtype | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Generate G(z) in batches (optionally under autocast) and feed them to `metrics` as uint8."""
    device = model.device
    for start in range(0, len(z), batch_size):
        chunk = z[start : start + batch_size].to(device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            images = model.decode(chunk, use_ema)
        metrics.update(to_uint8(images), real=False)
        if on_batch is not None:
            on_batch(len(chunk))


@torch.no_grad()
def add_real(metrics: ImageMetrics, batches: Iterable[dict], on_batch: Callable[[int], None] | None = None) -> None:
    for batch in batches:
        metrics.update(batch["image"], real=True)
        if on_batch is not None:
            on_batch(len(batch["image"]))


def prepare_real_stats(
    metrics: ImageMetrics,
    datamodule,
    cache_dir: str | Path,
    n_real: int | None = None,
    batch_size: int = 250,
    on_batch: Callable[[int], None] | None = None,
) -> dict:
    """Load the real statistics from the cache, or compute and cache them; install them in `metrics`.

    Returns a description for results files: number of images, split, cache file, hit or miss.
    """
    datamodule.setup()
    n = len(datamodule.train_set) if n_real is None else min(n_real, len(datamodule.train_set))
    key = stats_key(datamodule.identity(), "train", n, metrics.extractor.cache_key)
    path = cache_file(cache_dir, key)
    need_features = metrics.needs_real_features
    start = time.perf_counter()
    stats = load_cached(path, key, need_features)
    hit = stats is not None
    if not hit:
        log.info("computing real-image statistics of %d training images (cached in %s)", n, path)
        metrics.set_real(None)
        add_real(metrics, datamodule.real_dataloader(n, batch_size), on_batch)
        stats = metrics.real_stats()
        save_cached(path, key, stats)
    metrics.set_real(stats)
    log.info("real statistics %s in %.2f s (%s)", "loaded" if hit else "computed", time.perf_counter() - start, path)
    return {"n_real": n, "real_split": "train", "real_stats_file": str(path), "real_stats_cached": hit}


class InceptionMetric(Metric):
    """FID, KID and IS: one Inception pass over the generated images serves all that are selected."""

    distributed = True  # ranks generate disjoint shares; torchmetrics sums the feature statistics

    def setup(self, ctx: MetricContext, shared: dict) -> None:
        if "inception" not in shared:
            # rank 0 may download the weights (if allowed); the other ranks only read them
            shared["inception"] = InceptionFeatures.load(
                ctx.inception_weights, ctx.download and ctx.rank == 0, ctx.antialias
            )

    def compute(self, ctx: MetricContext, shared: dict) -> tuple[dict[str, float], dict]:
        if "inception" not in ctx.memo:
            ctx.memo["inception"] = inception_scores(ctx, shared)
        scores, protocol = ctx.memo["inception"]
        return {k: v for k, v in scores.items() if k.split("_")[0] == self.key}, protocol

    key = ""


@METRICS.register("fid")
class FID(InceptionMetric):
    """Frechet Inception Distance of n_fake generated images to the real training statistics."""

    key = "fid"

    def min_fake(self) -> int:
        return 2  # a covariance (rank-deficient below 2049 images: not comparable with published FID)


@METRICS.register("kid")
class KID(InceptionMetric):
    """Kernel Inception Distance (mean and std over `subsets` random subsets of `subset_size`)."""

    key = "kid"

    def __init__(self, subsets: PositiveInt = 100, subset_size: at_least(2) = 1000):
        self.subsets, self.subset_size = subsets, subset_size

    def min_fake(self) -> int:
        return 2  # the unbiased MMD of a subset (subset_size is capped at the images there are)


@METRICS.register("is")
class IS(InceptionMetric):
    """Inception Score of the generated images (mean and std over `splits` splits)."""

    key = "is"
    higher_is_better = ("is_mean",)

    def __init__(self, splits: PositiveInt = 10):
        self.splits = splits

    def min_fake(self) -> int:
        return self.splits  # at least one image per split (metrics.is.splits)


@METRICS.register("prdc")
class PRDC(InceptionMetric):
    """Precision and recall (k = `k_pr`) and density and coverage (k = `k_dc`) of n_fake generated
    images against the real training images, in Inception's 2048-d pool features."""

    key = "prdc"
    higher_is_better = ("prdc_precision", "prdc_recall", "prdc_density", "prdc_coverage")

    def __init__(self, k_pr: PositiveInt = 3, k_dc: PositiveInt = 5, chunk: PositiveInt = 2048):
        self.k_pr, self.k_dc, self.chunk = k_pr, k_dc, chunk

    def min_fake(self) -> int:
        return self.k_pr + 1  # each generated image's k-th nearest generated neighbour (recall)


def inception_scores(ctx: MetricContext, shared: dict) -> tuple[dict[str, float], dict]:
    """Every selected Inception metric from one pass; real statistics loaded (or computed and cached) once."""
    if "image_metrics" not in shared:
        selected = {m.key: m for m in shared["metric_set"].metrics.values() if isinstance(m, InceptionMetric)}
        kid, inception_score, pr = selected.get("kid"), selected.get("is"), selected.get("prdc")
        metrics = ImageMetrics(
            shared["inception"],
            list(selected),
            kid_subsets=kid.subsets if kid else 100,
            kid_subset_size=kid.subset_size if kid else 1000,
            is_splits=inception_score.splits if inception_score else 10,
            prdc_k=(pr.k_pr, pr.k_dc) if pr else (3, 5),
            prdc_chunk=pr.chunk if pr else 2048,
        )
        shared["image_metrics"] = metrics.to(ctx.model.device)
        shared["real_info"] = {}
        if metrics.needs_real:
            if ctx.rank == 0:
                datamodule = ctx.datamodule
                datamodule.setup()
                n_total = (
                    len(datamodule.train_set) if ctx.n_real is None else min(ctx.n_real, len(datamodule.train_set))
                )
                shared["real_info"] = prepare_real_stats(
                    metrics,
                    datamodule,
                    ctx.cache_dir,
                    ctx.n_real,
                    ctx.batch_size,
                    on_batch=ctx.on_batch("real images", n_total),
                )
            else:
                metrics.set_real(None)  # the states are summed over ranks: rank 0 alone holds the real ones
    metrics: ImageMetrics = shared["image_metrics"]
    metrics.reset()
    z = fake_noise(ctx.n_fake, ctx.model.z_dim, ctx.seed, ctx.rank, ctx.world_size)
    add_generated(
        metrics,
        ctx.model,
        z,
        ctx.batch_size,
        ctx.use_ema,
        ctx.autocast_dtype,
        on_batch=ctx.on_batch("generated images", len(z)),
    )
    with torch.random.fork_rng(devices=[]):  # the training run's random stream stays as it was
        torch.manual_seed(ctx.seed)  # KID and IS draw their subsets from the global generator
        scores = metrics.compute()
    protocol = {
        "n_fake": ctx.n_fake,
        "noise_seed": ctx.seed,
        "use_ema": ctx.use_ema and ctx.model.has_ema,
        "input": "uint8, rounded and clamped from [-1, 1]",
        **metrics.extractor.protocol,
    }
    info = shared["real_info"]
    if info:
        protocol.update(
            n_real=info["n_real"],
            real_split=info["real_split"],
            real_stats={"file": info["real_stats_file"], "cached": info["real_stats_cached"]},
        )
    if metrics.kid is not None:
        protocol.update(kid_subsets=metrics.kid.subsets, kid_subset_size=metrics.kid.subset_size)
    if metrics.inception_score is not None:
        protocol.update(is_splits=metrics.inception_score.splits)
    if metrics.feature_sets is not None:
        protocol.update(
            prdc={
                "features": "Inception-v3 pool (2048-d)",
                "k_precision_recall": metrics.prdc_k[0],
                "k_density_coverage": metrics.prdc_k[1],
                "n_real": info.get("n_real"),
                "n_fake": ctx.n_fake,
                "balls": "closed (distance <= k-NN radius)",
            }
        )
    return scores, protocol
