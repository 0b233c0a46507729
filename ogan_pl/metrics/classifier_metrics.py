"""Metrics in the features of a classifier trained on the dataset itself (ogan_pl.metrics.domain_classifier):
they need no download, and they judge digits better than Inception does. Named `*_classifier` so
they are never confused with the Inception FID / KID / IS of published work.

    fd_classifier     Frechet distance between generated and real (training) images' penultimate features
    kid_classifier    KID (cubic polynomial kernel, unbiased MMD^2) in the same features
    is_classifier     class Inception Score of generated images: exp E[KL(p(y|x) || p(y))]; 10 = all
                      ten digits, each confidently
    prdc_classifier   precision, recall (k = 3), density, coverage (k = 5) of generated against real
                      (training) images' penultimate features (ogan_pl.metrics.prdc)
    recon_classifier  label accuracy of reconstructions G(s N(E(x))) of held-out images, and the
                      agreement of their predicted labels with those of the originals

Each reports, in its protocol, the same number for real held-out images (the reference a model
is compared with) and the classifier's identity and held-out accuracy.
"""

import numpy as np
import torch
from torch import Tensor

from ogan_pl.metrics.base import Metric, MetricContext
from ogan_pl.metrics.domain_classifier import ClassifierSpec, load_or_train
from ogan_pl.metrics.encoder import reconstruct_holdout
from ogan_pl.metrics.image_metrics import fake_noise
from ogan_pl.metrics.prdc import knn_radii, prdc
from ogan_pl.registry.registries import METRICS
from ogan_pl.registry.values import PositiveInt, at_least
from ogan_pl.utils.errors import UserError


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two feature sets (N, D), in float64.

    Tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of S_a S_b, which are
    real and >= 0 (it is similar to S_a^(1/2) S_b S_a^(1/2)); tiny negative round-off is clamped.
    """
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    eigenvalues = torch.linalg.eigvals(cov_a @ cov_b).real.clamp_min(0)
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * eigenvalues.sqrt().sum())


def kernel_inception_distance(
    a: Tensor, b: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3 over random subsets (mean, std), as KID."""
    gen = torch.Generator().manual_seed(seed)
    a, b = a.double(), b.double()
    m = min(subset_size, len(a), len(b))
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[torch.randperm(len(a), generator=gen)[:m]]
        y = b[torch.randperm(len(b), generator=gen)[:m]]
        k_xx, k_yy, k_xy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        off = m * (m - 1)
        values.append(
            (
                (k_xx.sum() - k_xx.diagonal().sum()) / off
                + (k_yy.sum() - k_yy.diagonal().sum()) / off
                - 2 * k_xy.mean()
            ).item()
        )
    values = np.asarray(values)
    return float(values.mean()), float(values.std())


def class_inception_score(probs: Tensor) -> float:
    """exp( mean_x KL(p(y|x) || p(y)) ), p(y) the mean of p(y|x) over the images."""
    probs = probs.double()
    marginal = probs.mean(0, keepdim=True)
    kl = (probs * (probs.clamp_min(1e-12).log() - marginal.clamp_min(1e-12).log())).sum(1)
    return float(kl.mean().exp())


class ClassifierMetric(Metric):
    """The shared part: the classifier (trained or loaded once per set), and features of real images."""

    def setup(self, ctx: MetricContext, shared: dict) -> None:
        if getattr(ctx.datamodule, "num_classes", None) is None:
            raise UserError(
                f"metric {self.name} needs a labelled dataset (digits, mnist, cifar10, shapes); "
                f"{type(ctx.datamodule).__name__} has no labels"
            )

    name = ""

    @staticmethod
    def classifier(ctx: MetricContext, shared: dict):
        if "classifier" not in shared:
            spec = ClassifierSpec(**(ctx.classifier or {}))
            model, record = load_or_train(ctx.datamodule, ctx.cache_dir, spec)
            shared["classifier"] = (model.to(ctx.model.device), {**record, "spec": spec.__dict__})
        return shared["classifier"]

    @staticmethod
    @torch.no_grad()
    def outputs(model, images: Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
        """(features, class probabilities) of images in [-1, 1], on the CPU in float32."""
        device = next(model.parameters()).device
        features, probs = [], []
        for i in range(0, len(images), batch_size):
            f, logits = model(images[i : i + batch_size].to(device).float())
            features.append(f.cpu())
            probs.append(logits.float().softmax(1).cpu())
        return torch.cat(features), torch.cat(probs)

    def real(self, ctx: MetricContext, shared: dict, split: str) -> dict[str, Tensor]:
        """Features, probabilities and labels of real images (the training split's first n_real, or
        the held-out split), computed once per set: the data does not change during a run."""
        key = f"classifier_real_{split}_{ctx.n_real}"
        if key not in shared:
            model, _ = self.classifier(ctx, shared)
            dm = ctx.datamodule.reference()  # for a small-data run: the whole dataset's real images
            dm.setup()
            dataset = dm.holdout_set if split == "holdout" else dm.train_set
            n = len(dataset) if split == "holdout" or ctx.n_real is None else min(ctx.n_real, len(dataset))
            batch = dm.first_batch(split, n)
            features, probs = self.outputs(model, batch["image"], ctx.batch_size)
            shared[key] = {
                "features": features,
                "probs": probs,
                "labels": batch["label"].long(),
                "images": batch["image"] if split == "holdout" else None,
            }
        return shared[key]

    def fake(self, ctx: MetricContext, shared: dict) -> dict[str, Tensor]:
        """Features and probabilities of n_fake generated images (once per evaluation)."""
        if "classifier_fake" not in ctx.memo:
            model, _ = self.classifier(ctx, shared)
            z = fake_noise(ctx.n_fake, ctx.model.z_dim, ctx.seed)
            images = torch.cat(
                [
                    ctx.model.decode(z[i : i + ctx.batch_size], ctx.use_ema).float().cpu()
                    for i in range(0, len(z), ctx.batch_size)
                ]
            )
            features, probs = self.outputs(model, images, ctx.batch_size)
            ctx.memo["classifier_fake"] = {"features": features, "probs": probs}
        return ctx.memo["classifier_fake"]

    def protocol(self, ctx: MetricContext, shared: dict, **extra) -> dict:
        _, record = self.classifier(ctx, shared)
        return {
            "classifier": {k: record[k] for k in ("file", "holdout_accuracy", "n_train", "spec")},
            "classifier_n_fake": ctx.n_fake,
            "use_ema": ctx.use_ema and ctx.model.has_ema,
            **extra,
        }


@METRICS.register("fd_classifier")
class FDClassifier(ClassifierMetric):
    name = "fd_classifier"

    def compute(self, ctx, shared):
        real = self.real(ctx, shared, "train")
        score = frechet_distance(self.fake(ctx, shared)["features"], real["features"])
        reference = frechet_distance(self.real(ctx, shared, "holdout")["features"], real["features"])
        return {"fd_classifier": score}, self.protocol(
            ctx, shared, n_real=len(real["features"]), reference={"fd_classifier": reference}
        )


@METRICS.register("kid_classifier")
class KIDClassifier(ClassifierMetric):
    name = "kid_classifier"

    def __init__(self, subsets: PositiveInt = 100, subset_size: at_least(2) = 1000):
        self.subsets, self.subset_size = subsets, subset_size

    def compute(self, ctx, shared):
        real = self.real(ctx, shared, "train")["features"]
        mean, std = kernel_inception_distance(
            self.fake(ctx, shared)["features"], real, self.subsets, self.subset_size, ctx.seed
        )
        ref, _ = kernel_inception_distance(
            self.real(ctx, shared, "holdout")["features"], real, self.subsets, self.subset_size, ctx.seed
        )
        return (
            {"kid_classifier_mean": mean, "kid_classifier_std": std},
            self.protocol(
                ctx,
                shared,
                kid_classifier_subsets=self.subsets,
                kid_classifier_subset_size=self.subset_size,
                reference={"kid_classifier_mean": ref},
            ),
        )


@METRICS.register("prdc_classifier")
class PRDCClassifier(ClassifierMetric):
    """Fidelity (precision, density) and diversity (recall, coverage) apart, in the classifier's features."""

    name = "prdc_classifier"
    higher_is_better = (
        "prdc_classifier_precision",
        "prdc_classifier_recall",
        "prdc_classifier_density",
        "prdc_classifier_coverage",
    )

    def __init__(self, k_pr: PositiveInt = 3, k_dc: PositiveInt = 5, chunk: PositiveInt = 2048):
        self.k_pr, self.k_dc, self.chunk = k_pr, k_dc, chunk

    def min_fake(self) -> int:
        return self.k_pr + 1

    def compute(self, ctx, shared):
        device = ctx.model.device
        real = self.real(ctx, shared, "train")["features"].to(device)
        key = f"prdc_classifier_radii_{len(real)}_{self.k_pr}_{self.k_dc}"
        if key not in shared:  # the real features do not change during a run
            shared[key] = knn_radii(real, (self.k_pr, self.k_dc), self.chunk)
        score = prdc(real, self.fake(ctx, shared)["features"].to(device), self.k_pr, self.k_dc, self.chunk, shared[key])
        holdout = self.real(ctx, shared, "holdout")["features"].to(device)
        reference = prdc(real, holdout, self.k_pr, self.k_dc, self.chunk, shared[key])
        return (
            {f"prdc_classifier_{name}": value for name, value in score.items()},
            self.protocol(
                ctx,
                shared,
                prdc_classifier={
                    "features": f"domain classifier penultimate ({real.shape[1]}-d)",
                    "k_precision_recall": self.k_pr,
                    "k_density_coverage": self.k_dc,
                    "n_real": len(real),
                    "n_fake": ctx.n_fake,
                    "balls": "closed (distance <= k-NN radius)",
                    "reference_n": len(holdout),
                },
                reference={f"prdc_classifier_{name}": value for name, value in reference.items()},
            ),
        )


@METRICS.register("is_classifier")
class ISClassifier(ClassifierMetric):
    name = "is_classifier"
    higher_is_better = ("is_classifier",)

    def compute(self, ctx, shared):
        score = class_inception_score(self.fake(ctx, shared)["probs"])
        reference = class_inception_score(self.real(ctx, shared, "holdout")["probs"])
        return {"is_classifier": score}, self.protocol(ctx, shared, reference={"is_classifier": reference})


@METRICS.register("recon_classifier")
class ReconClassifier(ClassifierMetric):
    """Does G(s N(E(x))) keep x's class? Accuracy against the true labels, agreement with the
    classifier's label of x itself."""

    name = "recon_classifier"
    higher_is_better = ("recon_classifier_accuracy", "recon_classifier_agreement")

    def compute(self, ctx, shared):
        model, _ = self.classifier(ctx, shared)
        real = self.real(ctx, shared, "holdout")
        images = real["images"]
        recon = reconstruct_holdout(ctx, images)
        _, probs = self.outputs(model, recon, ctx.batch_size)
        predicted = probs.argmax(1)
        scores = {
            "recon_classifier_accuracy": (predicted == real["labels"]).double().mean().item(),
            "recon_classifier_agreement": (predicted == real["probs"].argmax(1)).double().mean().item(),
        }
        reference = (real["probs"].argmax(1) == real["labels"]).double().mean().item()
        return scores, self.protocol(
            ctx, shared, n_holdout=len(images), reference={"recon_classifier_accuracy": reference}
        )
