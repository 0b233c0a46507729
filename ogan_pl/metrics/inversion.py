"""What the encoder is for, measured. Inversion: how well codes can be found for real images: the encoder alone, hybrid inversion (start from the
encoder, then optimise) and the projector baseline (optimise from the mean or a random code, no
encoder term), each after the same numbers of steps (docs/evaluation.md, "Inversion").

Scores per split (`holdout`, and `train`: how far the encoder generalises) and method:
`inversion/<split>/<method>/psnr`, `/ssim`, `/label_agreement` (the domain classifier's label of
the reconstruction equals its label of the image; labelled datasets) and `/ms_per_image` (wall
time to reach that many steps, per image, in one batch). Editing: see EditingMetrics.
"""

import time

import torch

from ogan_pl.method.directions import SUPERVISED, class_mean_direction, linear_direction
from ogan_pl.metrics.base import Metric, MetricContext
from ogan_pl.metrics.classifier_metrics import ClassifierMetric
from ogan_pl.metrics.encoder import image_quality, latent_all
from ogan_pl.metrics.perceptual import PERCEPTUAL, build_perceptual
from ogan_pl.registry.registries import METRICS
from ogan_pl.registry.values import NonNegativeFinite, PositiveFinite, PositiveInt, at_least, finite, non_empty, one_of
from ogan_pl.utils.device import synchronize

SPLITS = ("holdout", "train")


@METRICS.register("inversion")
class InversionMetrics(Metric):
    """Encoder alone vs hybrid inversion vs the projector baseline on `n_images` images of each split."""

    higher_is_better = ()  # dozens of scores, none a training target: no best-checkpoint tracking

    def __init__(
        self,
        n_images: PositiveInt = 256,
        steps: non_empty(PositiveInt, "[10,50,200]") = (10, 50, 200),
        lr: PositiveFinite = 0.1,
        perceptual: one_of(PERCEPTUAL) = "encoder",
        perceptual_weight: NonNegativeFinite = 1.0,
        encoder_weight: NonNegativeFinite = 0.1,
        baselines: bool = True,
        splits: non_empty(one_of(SPLITS), "[holdout,train]") = SPLITS,
    ):
        self.n_images, self.steps = n_images, sorted(set(steps))
        self.lr, self.perceptual = lr, perceptual
        self.perceptual_weight, self.encoder_weight = perceptual_weight, encoder_weight
        self.baselines, self.splits = baselines, list(splits)

    def compute(self, ctx: MetricContext, shared: dict) -> tuple[dict[str, float], dict]:
        model, device = ctx.model, ctx.model.device
        labelled = getattr(ctx.datamodule, "num_classes", None) is not None
        classifier = ClassifierMetric.classifier(ctx, shared)[0] if labelled else None
        perceptual = build_perceptual(self.perceptual, model, ctx.datamodule, ctx.cache_dir, classifier=ctx.classifier)
        scores: dict[str, float] = {}
        runs = [("hybrid", "encoder", self.encoder_weight)]
        if self.baselines:
            runs += [("mean", "mean", 0.0), ("random", "random", 0.0)]
        for split in self.splits:
            images = ctx.datamodule.first_batch(split, self.n_images)["image"]
            self._score(
                scores,
                f"inversion/{split}/encoder",
                model.reconstruct(images, ctx.use_ema),
                images,
                classifier,
                ctx.batch_size,
            )
            for name, init, encoder_weight in runs:
                results = {}
                for start in range(0, len(images), ctx.batch_size):
                    batch = images[start : start + ctx.batch_size]
                    clock = {0: time.perf_counter()}

                    def tick(step: int, clock: dict = clock) -> None:
                        synchronize(device)
                        clock[step] = time.perf_counter()

                    result = model.invert(
                        batch,
                        steps=self.steps[-1],
                        lr=self.lr,
                        init=init,
                        perceptual=perceptual,
                        perceptual_weight=self.perceptual_weight,
                        encoder_weight=encoder_weight,
                        seed=ctx.seed + start,
                        use_ema=ctx.use_ema,
                        snapshots=(0, *self.steps),
                        on_snapshot=tick,
                    )
                    for steps in self.steps:
                        z, seconds = result.snapshots[steps], clock[steps] - clock[0]
                        codes, total = results.get(steps, ([], 0.0))
                        results[steps] = ([*codes, z], total + seconds)
                for steps, (codes, seconds) in results.items():
                    recon = model.decode(torch.cat(codes), ctx.use_ema)
                    key = f"inversion/{split}/{name}_{steps}"
                    self._score(scores, key, recon, images, classifier, ctx.batch_size)
                    scores[f"{key}/ms_per_image"] = 1000 * seconds / len(images)
        return scores, {
            "n_images": self.n_images,
            "steps": self.steps,
            "lr": self.lr,
            "perceptual": self.perceptual,
            "perceptual_weight": self.perceptual_weight,
            "encoder_weight": self.encoder_weight,
            "baselines": "mean/random start, encoder_weight 0",
            "use_ema": ctx.use_ema and model.has_ema,
        }

    @staticmethod
    def _score(scores: dict, key: str, recon: torch.Tensor, images: torch.Tensor, classifier, batch_size: int):
        psnr, ssim = image_quality(recon, images)
        scores[f"{key}/psnr"], scores[f"{key}/ssim"] = psnr.mean().item(), ssim.mean().item()
        if classifier is not None:
            _, p_recon = ClassifierMetric.outputs(classifier, recon.float().cpu(), batch_size)
            _, p_real = ClassifierMetric.outputs(classifier, images.float().cpu(), batch_size)
            scores[f"{key}/label_agreement"] = (p_recon.argmax(1) == p_real.argmax(1)).double().mean().item()


@METRICS.register("editing")
class EditingMetrics(ClassifierMetric):
    """Class directions (ogan_pl.method.directions, fitted on the codes of `n_fit` training images)
    applied to `n_images` held-out images of other classes, at each strength a:

    - editing/to_target@a: how often the domain classifier's label of G(z + a d_c) becomes c;
    - editing/class_change@a: how often it changes at all;
    - editing/random_to_target@a, editing/random_change@a: the same for a random unit direction in
      place of d_c (one per class, fixed by the seed), at the same strength;
    - editing/psnr_to_recon@a: PSNR between the edited image and the unedited reconstruction G(z)
      (how much else changes).
    """

    name = "editing"
    higher_is_better = ()

    def __init__(
        self,
        n_fit: at_least(2) = 5000,
        n_images: PositiveInt = 256,
        strengths: non_empty(finite(), "[2,4,8]") = (2.0, 4.0, 8.0),
        method: one_of(SUPERVISED) = "class_mean",
    ):
        self.n_fit, self.n_images, self.method = n_fit, n_images, method
        self.strengths = [float(a) for a in strengths]

    @torch.no_grad()
    def compute(self, ctx: MetricContext, shared: dict) -> tuple[dict[str, float], dict]:
        from_train = ctx.datamodule.first_batch("train", self.n_fit)
        codes = latent_all(ctx.model, from_train["image"], ctx.batch_size, ctx.use_ema)
        labels = from_train["label"]
        classifier, _ = self.classifier(ctx, shared)
        held_out = ctx.datamodule.holdout_batch(self.n_images)
        z = latent_all(ctx.model, held_out["image"], ctx.batch_size, ctx.use_ema)
        base = ctx.model.decode(z, ctx.use_ema).float().cpu()
        _, probs = self.outputs(classifier, base, ctx.batch_size)
        before = probs.argmax(1)
        generator = torch.Generator().manual_seed(ctx.seed)
        classes = sorted(int(c) for c in labels.unique())
        # per class: its direction, and one random unit direction (the same at every strength)
        pairs = {
            c: (
                fit_direction(self.method, codes, labels, c),
                torch.nn.functional.normalize(torch.randn(codes.shape[1], generator=generator), dim=0),
            )
            for c in classes
        }
        scores = {}
        for a in self.strengths:
            hits, changed, random_hits, random_changed, psnrs, count = 0, 0, 0, 0, [], 0
            for c, (direction, random) in pairs.items():
                others = before != c
                if not others.any():
                    continue
                edited = ctx.model.decode(z[others] + a * direction, ctx.use_ema).float().cpu()
                after = self.outputs(classifier, edited, ctx.batch_size)[1].argmax(1)
                hits += int((after == c).sum())
                changed += int((after != before[others]).sum())
                psnrs.append(image_quality(edited, base[others])[0])
                moved = ctx.model.decode(z[others] + a * random, ctx.use_ema).float().cpu()
                after_random = self.outputs(classifier, moved, ctx.batch_size)[1].argmax(1)
                random_hits += int((after_random == c).sum())
                random_changed += int((after_random != before[others]).sum())
                count += int(others.sum())
            scores[f"editing/to_target@{a:g}"] = hits / count
            scores[f"editing/class_change@{a:g}"] = changed / count
            scores[f"editing/random_to_target@{a:g}"] = random_hits / count
            scores[f"editing/random_change@{a:g}"] = random_changed / count
            scores[f"editing/psnr_to_recon@{a:g}"] = torch.cat(psnrs).mean().item()
        return scores, self.protocol(
            ctx, shared, n_fit=len(codes), n_images=len(z), method=self.method, strengths=self.strengths
        )


def fit_direction(method: str, codes: torch.Tensor, labels: torch.Tensor, target: int) -> torch.Tensor:
    if method == "class_mean":
        return class_mean_direction(codes, labels, target)
    return linear_direction(codes, labels, target)
