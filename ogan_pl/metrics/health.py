"""The encoder's health, with or without labels (docs/evaluation.md, "The encoder's health").

On the held-out split, x_hat = G(s N(E(x))) and x' = the next held-out image (a fixed pairing):

    health/rho          mean rho(z, E(G(z))) on a fixed set of fresh z
    health/psnr, ssim   of x_hat against x, on [0, 1]
    health/recon_ratio  mean ||x - x_hat|| / mean ||x - x'||   (BiGAN's ratio: 0 perfect, about 1
                        when x_hat says nothing about x)
    health/diversity    mean ||x_hat - x_hat'|| / mean ||x - x'|| (0 when every x_hat is one image)
    health/code_rank    exp(H(sigma / sum sigma)) / z_dim, sigma the singular values of the centred
                        held-out codes E(x) (the effective rank of Roy & Vetterli, as a fraction)
    health/code_scale   sqrt(mean E(x)^2), the codes' root mean square (a diagnostic: N(.) removes
                        the scale before G reads a code, the adversarial term does not)

With labels, codes E(x) of the first `n_probe_train` training images are the probes' training set:

    health/linear_probe  accuracy on held-out codes of multinomial logistic regression (L2, C = 1, on
                         standardised codes: scikit-learn's LogisticRegression on StandardScaler)
    health/knn1          accuracy of the nearest training code (Euclidean, raw E(x))
"""

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from ogan_pl.metrics.base import Metric, MetricContext
from ogan_pl.metrics.encoder import encode_all, image_quality, mean_correlation, reconstruct_holdout
from ogan_pl.registry.registries import METRICS
from ogan_pl.registry.values import at_least

LABEL_FREE = (
    "health/rho",
    "health/psnr",
    "health/ssim",
    "health/recon_ratio",
    "health/diversity",
    "health/code_rank",
    "health/code_scale",
)
LABELLED = ("health/linear_probe", "health/knn1")


def pair_distance(a: Tensor, b: Tensor) -> Tensor:
    """Per-image Euclidean distance between two image batches (B, ...) -> (B,), in float64."""
    return (a.double() - b.double()).flatten(1).norm(dim=1)


def recon_ratio(x: Tensor, x_hat: Tensor) -> float:
    """mean ||x - x_hat|| / mean ||x - x'||, x' = x rolled by one (another image of the set)."""
    return (pair_distance(x, x_hat).mean() / pair_distance(x, x.roll(1, 0)).mean()).item()


def diversity(x: Tensor, x_hat: Tensor) -> float:
    """mean ||x_hat - x_hat'|| / mean ||x - x'||: how far apart reconstructions are, relative to their
    originals (same pairing); 0 when they are all one image."""
    return (pair_distance(x_hat, x_hat.roll(1, 0)).mean() / pair_distance(x, x.roll(1, 0)).mean()).item()


def effective_rank(codes: Tensor) -> float:
    """exp of the entropy of the normalised singular values of the centred codes (N, D); 1..D."""
    sigma = torch.linalg.svdvals(codes.double() - codes.double().mean(0))
    p = sigma / sigma.sum().clamp_min(1e-300)
    entropy = -(p * p.clamp_min(1e-300).log()).sum()
    return entropy.exp().item()


def fit_logistic(
    train_x: Tensor, train_y: Tensor, num_classes: int, c: float = 1.0, max_iter: int = 500
) -> Callable[[Tensor], Tensor]:
    """Multinomial logistic regression on standardised features (population std), fitted by L-BFGS to
    the objective of scikit-learn's LogisticRegression: sum_i CE_i + ||W||^2 / (2C), bias unpenalised
    -> the logits of new features."""
    mean, std = train_x.double().mean(0), train_x.double().std(0, unbiased=False).clamp_min(1e-12)
    a = (train_x.double() - mean) / std
    weight = torch.zeros(a.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [weight, bias],
        lr=1,
        max_iter=max_iter,
        tolerance_grad=1e-8,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    target = train_y.long()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a @ weight + bias, target, reduction="sum") + weight.pow(2).sum() / (2 * c)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    weight, bias = weight.detach(), bias.detach()
    return lambda x: ((x.double() - mean) / std) @ weight + bias


def nearest_neighbour(train_x: Tensor, train_y: Tensor, test_x: Tensor, chunk: int = 1024) -> Tensor:
    """Labels of each test point's nearest training point (Euclidean; the first on a tie)."""
    train = train_x.double()
    nearest = [torch.cdist(test_x[i : i + chunk].double(), train).argmin(1) for i in range(0, len(test_x), chunk)]
    return train_y[torch.cat(nearest)]


@torch.no_grad()
def label_free_health(
    model,
    x: Tensor,
    x_hat: Tensor,
    codes: Tensor,
    n_rho: int,
    batch_size: int = 256,
    use_ema: bool = True,
    seed: int = 0,
) -> dict[str, float]:
    """The label-free measures of held-out images x in [-1, 1], their reconstructions and codes."""
    psnr, ssim = image_quality(x_hat, x)
    return {
        "health/rho": mean_correlation(model, n_rho, batch_size, seed, use_ema),
        "health/psnr": psnr.mean().item(),
        "health/ssim": ssim.mean().item(),
        "health/recon_ratio": recon_ratio(x, x_hat),
        "health/diversity": diversity(x, x_hat),
        "health/code_rank": effective_rank(codes) / codes.shape[1],
        "health/code_scale": codes.double().pow(2).mean().sqrt().item(),
    }


def probe_health(
    train_codes: Tensor, train_labels: Tensor, test_codes: Tensor, test_labels: Tensor, num_classes: int
) -> dict[str, float]:
    linear = fit_logistic(train_codes, train_labels, num_classes)(test_codes).argmax(1)
    knn = nearest_neighbour(train_codes, train_labels, test_codes)
    return {
        "health/linear_probe": (linear == test_labels).double().mean().item(),
        "health/knn1": (knn == test_labels).double().mean().item(),
    }


@METRICS.register("health")
class EncoderHealth(Metric):
    """The encoder's health on the held-out split (module docstring): label-free measures for every
    dataset, and the linear-probe and 1-NN accuracies where the data has labels. `n_rho` fresh z
    (always the same ones), `n_holdout` held-out images (null: all), `n_probe_train` training codes."""

    higher_is_better = ("health/rho", "health/psnr", "health/ssim", "health/diversity", "health/code_rank", *LABELLED)

    def __init__(
        self, n_rho: at_least(2) = 1000, n_holdout: at_least(2) | None = None, n_probe_train: at_least(2) = 2000
    ):
        self.n_rho, self.n_holdout, self.n_probe_train = n_rho, n_holdout, n_probe_train

    def _data(self, ctx: MetricContext, shared: dict) -> dict:
        """Held-out images (and labels), training images and labels for the probes: read once per set."""
        if "health_data" not in shared:
            dm = ctx.datamodule.reference()
            dm.setup()
            n = len(dm.holdout_set) if self.n_holdout is None else min(self.n_holdout, len(dm.holdout_set))
            holdout = dm.first_batch("holdout", n)
            data = {"holdout": holdout["image"], "holdout_labels": holdout.get("label")}
            if data["holdout_labels"] is not None and getattr(dm, "num_classes", None):
                train = dm.first_batch("train", min(self.n_probe_train, len(dm.train_set)))
                data.update(train=train["image"], train_labels=train["label"].long(), num_classes=dm.num_classes)
            shared["health_data"] = data
        return shared["health_data"]

    def compute(self, ctx: MetricContext, shared: dict) -> tuple[dict[str, float], dict]:
        data = self._data(ctx, shared)
        x = data["holdout"]
        x_hat = reconstruct_holdout(ctx, x)
        codes = encode_all(ctx.model, x, ctx.batch_size, ctx.use_ema)
        scores = label_free_health(ctx.model, x, x_hat, codes, self.n_rho, ctx.batch_size, ctx.use_ema, ctx.seed)
        protocol = {
            "health": {
                "n_holdout": len(x),
                "n_rho": self.n_rho,
                "rho_seed": ctx.seed,
                "pairing": "roll 1",
                "use_ema": ctx.use_ema,
            }
        }
        if "train" in data:
            train_codes = encode_all(ctx.model, data["train"], ctx.batch_size, ctx.use_ema)
            scores.update(
                probe_health(
                    train_codes, data["train_labels"], codes, data["holdout_labels"].long(), data["num_classes"]
                )
            )
            protocol["health"].update(n_probe_train=len(train_codes), probe="logistic C=1 standardised; 1-NN L2 raw")
        return scores, protocol
