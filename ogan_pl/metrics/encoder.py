"""Encoder quality: reconstructions of held-out images, rho(z, E(G(z))) on fresh noise, and
linear probes of known generating factors from E(x)."""

from collections.abc import Callable

import torch
from torch import Tensor

from ogan_pl.data.convert import to_model_range, to_unit
from ogan_pl.data.shapes import FACTORS
from ogan_pl.method.correlation import correlation
from ogan_pl.method.directions import pca_directions
from ogan_pl.metrics.base import Metric, MetricContext
from ogan_pl.metrics.similarity import psnr, ssim
from ogan_pl.registry.registries import METRICS
from ogan_pl.registry.values import at_least
from ogan_pl.utils.loaders import first_items


@torch.no_grad()
def mean_correlation(model, n: int = 1024, batch_size: int = 256, seed: int = 0, use_ema: bool = True) -> float:
    """Mean rho(z, E(G(z))) over n fresh z ~ N(0, I)."""
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), model.z_dim, generator=gen)
        total += correlation(z.to(model.device), model.encode(model.decode(z, use_ema), use_ema)).sum().item()
    return total / n


@torch.no_grad()
def encode_all(model, images: Tensor, batch_size: int = 256, use_ema: bool = True) -> Tensor:
    return torch.cat(
        [model.encode(images[i : i + batch_size], use_ema).float().cpu() for i in range(0, len(images), batch_size)]
    )


@torch.no_grad()
def latent_all(model, images: Tensor, batch_size: int = 256, use_ema: bool = True) -> Tensor:
    """z = s * N(E(x)) of images in [-1, 1], in batches, on the CPU (the codes G reads and edits move)."""
    return torch.cat(
        [model.latent(images[i : i + batch_size], use_ema).float().cpu() for i in range(0, len(images), batch_size)]
    )


def reconstruct_holdout(ctx: MetricContext, images: Tensor) -> Tensor:
    """x_hat = G(s N(E(x))) of `images`, the reference dataset's first held-out images, on the CPU in
    float32: computed once per evaluation (the classifier and health metrics both read them)."""
    key = ("holdout_reconstructions", len(images))
    if key not in ctx.memo:
        ctx.memo[key] = torch.cat(
            [
                ctx.model.reconstruct(images[i : i + ctx.batch_size], ctx.use_ema).float().cpu()
                for i in range(0, len(images), ctx.batch_size)
            ]
        )
    return ctx.memo[key]


def fit_ridge(x_train: Tensor, y_train: Tensor, alpha: float) -> Callable[[Tensor], Tensor]:
    """Ridge regression (float64): A = [standardised x, 1], w = (A^T A + alpha n I)^-1 A^T Y (the bias
    column is penalised too) -> the predictor x -> [standardised x, 1] w."""
    x_train, y_train = x_train.double(), y_train.double()
    mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-8)

    def features(x: Tensor) -> Tensor:
        return torch.cat([(x.double() - mean) / std, torch.ones(len(x), 1, dtype=torch.float64)], 1)

    a = features(x_train)
    w = torch.linalg.solve(a.T @ a + alpha * len(a) * torch.eye(a.shape[1], dtype=a.dtype), a.T @ y_train)
    return lambda x: features(x) @ w


def r2_score(pred: Tensor, target: Tensor) -> Tensor:
    """Per-column coefficient of determination."""
    return 1 - (pred - target).pow(2).sum(0) / (target - target.mean(0)).pow(2).sum(0)


def factor_targets(factors: Tensor) -> Tensor:
    """What the probes predict from shapes factors (n, 6) -> (n, 8): x, y, scale, hue as the point
    (cos 2 pi h, sin 2 pi h) (hue is circular), the shape type one-hot. Rotation is left out: the
    shapes' symmetries make it ambiguous."""
    col = {name: factors[:, i].double() for i, name in enumerate(FACTORS)}
    hue = 2 * torch.pi * col["hue"]
    onehot = torch.nn.functional.one_hot(col["shape"].long(), 3).double()
    return torch.cat([torch.stack([col["x"], col["y"], col["scale"], hue.cos(), hue.sin()], 1), onehot], 1)


def fit_factor_probe(codes: Tensor, factors: Tensor, alpha: float = 1e-3) -> Callable[[Tensor], Tensor]:
    """Linear probes of the shapes factors from codes -> codes -> (n, 8) predictions (factor_targets'
    columns); the shape type is the argmax of the last three (a least-squares linear classifier)."""
    return fit_ridge(codes, factor_targets(factors), alpha)


def shape_factor_probe(
    codes_train: Tensor, factors_train: Tensor, codes_test: Tensor, factors_test: Tensor, alpha: float = 1e-3
) -> dict[str, float]:
    """Linear probes on the shapes dataset, fit on one split and scored on another: R^2 for x, y,
    scale and hue, accuracy for the shape type."""
    pred = fit_factor_probe(codes_train, factors_train, alpha)(codes_test)
    want = factor_targets(factors_test)
    r2 = r2_score(pred[:, :5], want[:, :5])
    accuracy = (pred[:, 5:].argmax(1) == want[:, 5:].argmax(1)).double().mean()
    return {
        "probe/x_r2": r2[0].item(),
        "probe/y_r2": r2[1].item(),
        "probe/scale_r2": r2[2].item(),
        "probe/hue_r2": r2[3:5].mean().item(),
        "probe/shape_accuracy": accuracy.item(),
    }


def image_quality(x_hat: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image PSNR (dB) and SSIM of images in [-1, 1], both computed on [0, 1] -> ((B,), (B,))."""
    x, x_hat = to_unit(x), to_unit(x_hat)
    return psnr(x_hat, x).float(), ssim(x_hat, x).float()


@torch.no_grad()
def reconstruction_error(model, images: Tensor, batch_size: int = 256, use_ema: bool = True) -> dict[str, float]:
    """x vs x_hat = G(s N(E(x))) for images in [-1, 1]: MSE (in [-1, 1]), and PSNR and SSIM on [0, 1]
    (mean over images); also the MSE against another image's reconstruction (x_hat rolled by one).

    The ratio of the two MSEs measures how specific a reconstruction is to its input: 1 when E(x)
    carries no information about x (however good G's images are), near 0 for a faithful encoder.
    """
    recon = torch.cat(
        [
            model.reconstruct(images[i : i + batch_size], use_ema).float().cpu()
            for i in range(0, len(images), batch_size)
        ]
    )
    images = images.float().cpu()
    own = (recon - images).pow(2).mean().item()
    other = (recon.roll(1, dims=0) - images).pow(2).mean().item()
    psnr, ssim = image_quality(recon, images)
    return {
        "recon/mse": own,
        "recon/psnr": psnr.mean().item(),
        "recon/ssim": ssim.mean().item(),
        "recon/mse_other": other,
        "recon/specificity_ratio": own / other,
    }


@torch.no_grad()
def latent_editing_consistency(
    model, images: Tensor, batch_size: int = 256, use_ema: bool = True, strength: float = 2.0, k: int = 3
) -> float:
    """e4e's LEC, mean over images and edits: ||z - f^-1(z')||, z = s N(E(x)), z' = s N(E(G(f(z)))),
    f(z) = z + a d, for a = +-strength along the top k principal directions d of the images' codes
    (0 when encoding an edited image gives back the edited code)."""
    z = latent_all(model, images, batch_size, use_ema)
    distances = []
    for d in pca_directions(z, k):
        for a in (strength, -strength):
            edited = z + a * d
            back = torch.cat(
                [
                    model.latent(model.decode(edited[i : i + batch_size], use_ema), use_ema).float().cpu()
                    for i in range(0, len(z), batch_size)
                ]
            )
            distances.append((z - (back - a * d)).norm(dim=1))
    return torch.cat(distances).mean().item()


@torch.no_grad()
def encoder_metrics(
    model,
    datamodule,
    n_rho: int = 10000,
    n_probe_train: int = 4096,
    batch_size: int = 256,
    use_ema: bool = True,
    seed: int = 0,
) -> dict[str, float]:
    """All encoder metrics: reconstructions of the held-out split, mean rho on n_rho fresh z, and,
    when the dataset has generating factors (shapes), probes fit on n_probe_train training images
    and scored on the held-out split."""
    datamodule.setup()
    holdout = first_items(datamodule.holdout_dataloader(batch_size), len(datamodule.holdout_set))
    holdout_images = to_model_range(holdout["image"])
    out = reconstruction_error(model, holdout_images, batch_size, use_ema)
    out["encoder/rho"] = mean_correlation(model, n_rho, batch_size, seed, use_ema)
    out["encoder/lec"] = latent_editing_consistency(model, holdout_images, batch_size, use_ema)
    if "factors" in holdout:
        train = first_items(datamodule.real_dataloader(n_probe_train, batch_size), n_probe_train)
        codes_train = encode_all(model, to_model_range(train["image"]), batch_size, use_ema)
        codes_test = encode_all(model, holdout_images, batch_size, use_ema)
        out.update(shape_factor_probe(codes_train, train["factors"], codes_test, holdout["factors"]))
    return out


@METRICS.register("encoder")
class EncoderMetrics(Metric):
    """Reconstruction MSE / PSNR / SSIM / specificity of held-out images, mean rho on `n_rho` fresh z,
    and the shapes factor probes (fit on `n_probe_train` training images)."""

    higher_is_better = (
        "recon/psnr",
        "recon/ssim",
        "encoder/rho",
        "probe/x_r2",
        "probe/y_r2",
        "probe/scale_r2",
        "probe/hue_r2",
        "probe/shape_accuracy",
    )

    def __init__(self, n_rho: at_least(2) = 10000, n_probe_train: at_least(2) = 4096):
        self.n_rho, self.n_probe_train = n_rho, n_probe_train

    def compute(self, ctx: MetricContext, shared: dict) -> tuple[dict[str, float], dict]:
        scores = encoder_metrics(
            ctx.model, ctx.datamodule, self.n_rho, self.n_probe_train, ctx.batch_size, ctx.use_ema, ctx.seed
        )
        return scores, {"n_holdout": len(ctx.datamodule.holdout_set), "n_rho": self.n_rho}
