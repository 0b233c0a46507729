"""Perceptual path length (Karras et al. 2019), in z and through the encoder (docs/evaluation.md,
"Perceptual path length").

    PPL = E[ d(G(p(t)), G(p(t + eps))) / eps^2 ],   t ~ U(0, 1) ("full") or t = 0 ("end")

over `n_paths` paths p, eps = 1e-4, the distances outside their 1st to 99th percentile dropped
before the mean (StyleGAN's filter). Two kinds of path:

- z: from z1 to z2 ~ N(0, I) by slerp. G reads z unnormalised, so the direction follows the great
  circle and the norm is interpolated linearly (StyleGAN slerps on the unit sphere because its
  mapping network normalises z);
- encoder: from s N(E(x_a)) to s N(E(x_b)) for pairs of held-out images, by lerp: the path
  OGAN.interpolate draws between two real images.

d is LPIPS-VGG (`ppl`, its weight files on disk) or the same normalised squared distance in the
domain classifier's conv features with unit weights (`ppl_classifier`, offline).
"""

import abc
from pathlib import Path

import torch
from torch import Tensor

from ogan_pl.method.perceptual import LPIPS, FeatureDistance
from ogan_pl.metrics.base import Metric, MetricContext
from ogan_pl.metrics.classifier_metrics import ClassifierMetric
from ogan_pl.metrics.encoder import latent_all
from ogan_pl.registry.registries import METRICS
from ogan_pl.registry.values import at_least, finite, non_empty, one_of
from ogan_pl.utils.errors import UserError

SAMPLING = ("full", "end")
PATHS = ("z", "encoder")


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Great-circle interpolation of the directions of a and b (B, D) at t (B, 1), the norm lerped."""
    norm_a, norm_b = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    u, v = a / norm_a, b / norm_b
    cos = (u * v).sum(1, keepdim=True).clamp(-1, 1)
    ortho = v - cos * u
    ortho = ortho / ortho.norm(dim=1, keepdim=True).clamp_min(1e-12)
    angle = t * torch.acos(cos)
    return (u * angle.cos() + ortho * angle.sin()) * torch.lerp(norm_a, norm_b, t)


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    return torch.lerp(a, b, t)


def filtered_mean(values: Tensor) -> float:
    """Mean of the values between their 1st ("lower") and 99th ("higher") percentile, inclusive."""
    values = values.double()
    low, high = (
        torch.quantile(values, 0.01, interpolation="lower"),
        torch.quantile(values, 0.99, interpolation="higher"),
    )
    return values[(values >= low) & (values <= high)].mean().item()


@torch.no_grad()
def path_lengths(
    model,
    distance,
    starts: Tensor,
    ends: Tensor,
    interpolate,
    epsilon: float = 1e-4,
    sampling: str = "full",
    batch_size: int = 250,
    seed: int = 0,
    use_ema: bool = True,
) -> Tensor:
    """d(G(p(t)), G(p(t + eps))) / eps^2 for each path from starts[i] to ends[i] -> (n,) on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.rand(len(starts), 1, generator=generator, dtype=torch.float64) * (1.0 if sampling == "full" else 0.0)
    out = []
    for i in range(0, len(starts), batch_size):
        a, b = starts[i : i + batch_size].double(), ends[i : i + batch_size].double()
        ti = t[i : i + batch_size]
        # the two points are formed in float64: at eps = 1e-4 their difference is near float32's resolution
        p0, p1 = interpolate(a, b, ti).float(), interpolate(a, b, ti + epsilon).float()
        images = model.decode(torch.cat([p0, p1]), use_ema).float()
        first, second = images.chunk(2)
        out.append((distance(first, second).double() / epsilon**2).cpu())
    return torch.cat(out)


class PathLength(Metric):
    """The shared part of `ppl` and `ppl_classifier`; subclasses give `distance(ctx, shared)` and `key`."""

    key = ""
    distance_name = ""

    def __init__(
        self,
        n_paths: at_least(2) = 10000,
        epsilon: finite(above=0, below=1, note="e.g. 1e-4") = 1e-4,
        sampling: one_of(SAMPLING) = "full",
        paths: non_empty(one_of(PATHS), "[z,encoder]") = PATHS,
    ):
        self.n_paths, self.epsilon, self.sampling, self.paths = n_paths, float(epsilon), sampling, list(paths)

    @abc.abstractmethod
    def distance(self, ctx: MetricContext, shared: dict):
        """d(a, b) -> (B,) for images in [-1, 1] on the model's device."""

    def compute(self, ctx: MetricContext, shared: dict) -> tuple[dict[str, float], dict]:
        distance, model = self.distance(ctx, shared), ctx.model
        settings = {
            "epsilon": self.epsilon,
            "sampling": self.sampling,
            "batch_size": ctx.batch_size,
            "use_ema": ctx.use_ema,
        }
        scores, protocol = (
            {},
            {
                "distance": self.distance_name,
                "epsilon": self.epsilon,
                "sampling": self.sampling,
                "filter": "1st to 99th percentile",
                "use_ema": ctx.use_ema and model.has_ema,
            },
        )
        generator = torch.Generator().manual_seed(ctx.seed)
        if "z" in self.paths:
            z = torch.randn(2, self.n_paths, model.z_dim, generator=generator)
            scores[self.key] = filtered_mean(
                path_lengths(model, distance, z[0], z[1], slerp, seed=ctx.seed + 1, **settings)
            )
            protocol["z"] = {"n_paths": self.n_paths, "interpolation": "slerp of the direction, lerp of the norm"}
        if "encoder" in self.paths:
            images = ctx.datamodule.holdout_batch(self.n_paths)["image"]
            if len(images) < 2:
                raise UserError(
                    f"metric {self.key}: the encoder paths need at least 2 held-out images; raise dataset.holdout_size"
                )
            codes = latent_all(model, images, ctx.batch_size, ctx.use_ema)
            first = torch.randint(len(codes), (self.n_paths,), generator=generator)
            second = (first + torch.randint(1, len(codes), (self.n_paths,), generator=generator)) % len(codes)
            scores[f"{self.key}_encoder"] = filtered_mean(
                path_lengths(model, distance, codes[first], codes[second], lerp, seed=ctx.seed + 2, **settings)
            )
            protocol["encoder"] = {
                "n_paths": self.n_paths,
                "interpolation": "lerp of s N(E(x))",
                "pairs": f"random pairs of {len(codes)} held-out images",
            }
        return scores, {self.key: protocol}


@METRICS.register("ppl_classifier")
class PPLClassifier(PathLength, ClassifierMetric):
    """Path length in the domain classifier's conv features (offline; labelled datasets)."""

    key = name = "ppl_classifier"
    distance_name = "domain classifier conv features, channel-normalised squared differences, unit weights"

    def distance(self, ctx, shared):
        network, _ = self.classifier(ctx, shared)
        return FeatureDistance.of_convolutions(network.eval())

    def compute(self, ctx, shared):
        scores, protocol = super().compute(ctx, shared)
        return scores, self.protocol(ctx, shared, **protocol)


@METRICS.register("ppl")
class PPL(PathLength):
    """Path length in LPIPS-VGG (its two files on disk: `lpips_vgg`, `lpips_weights`; by default
    under the cache directory's lpips/)."""

    key = "ppl"
    distance_name = "LPIPS-VGG v0.1"

    def __init__(
        self,
        n_paths: at_least(2) = 10000,
        epsilon: finite(above=0, below=1, note="e.g. 1e-4") = 1e-4,
        sampling: one_of(SAMPLING) = "full",
        paths: non_empty(one_of(PATHS), "[z,encoder]") = PATHS,
        lpips_vgg: str | None = None,
        lpips_weights: str | None = None,
    ):
        super().__init__(n_paths, epsilon, sampling, paths)
        self.lpips_vgg, self.lpips_weights = lpips_vgg, lpips_weights

    def setup(self, ctx: MetricContext, shared: dict) -> None:
        if "lpips" not in shared:  # missing weights stop here, before any image is generated
            folder = Path(ctx.cache_dir) / "lpips"
            shared["lpips"] = LPIPS.from_files(
                self.lpips_vgg or folder / "vgg16-397923af.pth", self.lpips_weights or folder / "vgg.pth"
            )

    def distance(self, ctx, shared):
        self.setup(ctx, shared)
        return shared["lpips"].to(ctx.model.device)
