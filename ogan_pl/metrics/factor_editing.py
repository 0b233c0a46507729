"""Factor editing on a dataset with known generating factors (shapes): does an edit of one factor
move that factor and leave the others? (docs/evaluation.md, "Factor editing")

For each continuous factor f (x, y, scale) a direction d_f is fitted on the codes z = s N(E(x)) of
`n_fit` training images, as `ogan-directions method=class_mean attribute=f target=high` fits it
(class means of the images above vs below f's median). `n_images` held-out images are edited,
z' = z + a d_f, and every factor of G(z) and G(z') is read by linear probes from E's code (ridge,
fit on E(x) of the same training images and their true factors: metrics.encoder's probes). With
changes in units of each factor's standard deviation over the training images:

- factor_editing/<f>/moved@a: mean change of f (positive: the edit moves f the way it should);
- factor_editing/<f>/others@a: mean absolute change of the other two continuous factors;
- factor_editing/<f>/hue_change@a: mean absolute change of the hue angle, in turns (0 to 0.5);
- factor_editing/<f>/shape_change@a: how often the probe's shape type changes;
- factor_editing/random/change@a: mean absolute change of x, y and scale under a random unit
  direction of the same strength (one per factor, fixed by the seed): what any edit of that norm does.
"""

import torch

from ogan_pl.data.shapes import FACTORS
from ogan_pl.method.directions import above_median, class_mean_direction
from ogan_pl.metrics.base import Metric, MetricContext
from ogan_pl.metrics.encoder import encode_all, factor_targets, fit_factor_probe, latent_all
from ogan_pl.registry.registries import METRICS
from ogan_pl.registry.values import PositiveInt, at_least, finite, non_empty
from ogan_pl.utils.errors import UserError

EDITED = ("x", "y", "scale")  # the continuous factors; factor_targets' first three columns


def _read(model, probe, z: torch.Tensor, batch_size: int, use_ema: bool) -> torch.Tensor:
    """The probes' factors of G(z) -> (n, 8) (factor_targets' columns)."""
    images = torch.cat([model.decode(z[i : i + batch_size], use_ema).float() for i in range(0, len(z), batch_size)])
    return probe(encode_all(model, images, batch_size, use_ema))


def factor_changes(before: torch.Tensor, after: torch.Tensor, scale: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image changes between two probe readings (n, 8): x, y, scale in units of `scale` (3,)
    (signed), the hue angle in turns (absolute, the short way round), and whether the shape type changed."""

    def turn(p):
        return torch.atan2(p[:, 4], p[:, 3]) / (2 * torch.pi)

    hue = (turn(after) - turn(before)).remainder(1.0)
    return {
        "continuous": (after[:, :3] - before[:, :3]) / scale,
        "hue": torch.minimum(hue, 1 - hue),
        "shape": (after[:, 5:].argmax(1) != before[:, 5:].argmax(1)).double(),
    }


@METRICS.register("factor_editing")
class FactorEditingMetrics(Metric):
    """Edits of x, y and scale along class-mean directions, judged by the factor probes."""

    higher_is_better = ()

    def __init__(
        self,
        n_fit: at_least(2) = 4096,
        n_images: PositiveInt = 256,
        strengths: non_empty(finite(), "[1,2,4]") = (1.0, 2.0, 4.0),
    ):
        self.n_fit, self.n_images, self.strengths = n_fit, n_images, [float(a) for a in strengths]

    @torch.no_grad()
    def compute(self, ctx: MetricContext, shared: dict) -> tuple[dict[str, float], dict]:
        model, batch_size, use_ema = ctx.model, ctx.batch_size, ctx.use_ema
        fit = ctx.datamodule.first_batch("train", self.n_fit)
        if "factors" not in fit:
            raise UserError(
                "metrics.factor_editing needs a dataset with known generating factors (dataset=shapes); "
                "drop it from metrics.names"
            )
        probe = fit_factor_probe(encode_all(model, fit["image"], batch_size, use_ema), fit["factors"])
        codes = latent_all(model, fit["image"], batch_size, use_ema)
        scale = factor_targets(fit["factors"])[:, :3].std(0)
        z = latent_all(model, ctx.datamodule.holdout_batch(self.n_images)["image"], batch_size, use_ema)
        before = _read(model, probe, z, batch_size, use_ema)
        generator = torch.Generator().manual_seed(ctx.seed)
        scores = {}
        for i, name in enumerate(EDITED):
            values = fit["factors"][:, FACTORS.index(name)]
            direction = class_mean_direction(codes, above_median(values), True)
            random = torch.nn.functional.normalize(torch.randn(codes.shape[1], generator=generator), dim=0)
            others = [j for j in range(len(EDITED)) if j != i]
            for a in self.strengths:
                change = factor_changes(before, _read(model, probe, z + a * direction, batch_size, use_ema), scale)
                scores[f"factor_editing/{name}/moved@{a:g}"] = change["continuous"][:, i].mean().item()
                scores[f"factor_editing/{name}/others@{a:g}"] = change["continuous"][:, others].abs().mean().item()
                scores[f"factor_editing/{name}/hue_change@{a:g}"] = change["hue"].mean().item()
                scores[f"factor_editing/{name}/shape_change@{a:g}"] = change["shape"].mean().item()
                moved = factor_changes(before, _read(model, probe, z + a * random, batch_size, use_ema), scale)
                key = f"factor_editing/random/change@{a:g}"
                scores[key] = scores.get(key, 0.0) + moved["continuous"].abs().mean().item() / len(EDITED)
        return scores, {
            "n_fit": len(codes),
            "n_images": len(z),
            "strengths": self.strengths,
            "directions": "class_mean above vs below the median",
            "probes": "ridge on E(x), alpha 1e-3",
            "use_ema": use_ema and model.has_ema,
        }
