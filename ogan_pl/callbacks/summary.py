"""The few lines a newcomer reads when training ends: where the grids are, and how good G and E
are, each number next to the same number for real data."""

import logging
from pathlib import Path

import torch

from ogan_pl.callbacks.encoder_watch import EncoderWatch
from ogan_pl.callbacks.images import ImageGrids
from ogan_pl.callbacks.metrics import MetricsCallback
from ogan_pl.callbacks.work import TimedWork
from ogan_pl.metrics.encoder import mean_correlation

log = logging.getLogger(__name__)

#: (score, what it is, what the real-data reference is called, format)
LINES = [
    ("recon_classifier_accuracy", "reconstructions keep the label", "real held-out images", ".3f"),
    ("recon_classifier_agreement", "reconstructions agree with the original", None, ".3f"),
    ("is_classifier", "class-IS of samples (max = classes)", "real held-out images", ".2f"),
    ("fd_classifier", "FD in classifier features (lower better)", "real held-out vs training", ".2f"),
    ("fid", "FID (Inception)", None, ".2f"),
    ("health/recon_ratio", "held-out ||x - x_hat|| / ||x - x'|| (0 = exact)", None, ".3f"),
    ("health/diversity", "spread of reconstructions / of originals", None, ".3f"),
    ("health/linear_probe", "linear probe on held-out codes E(x)", None, ".3f"),
    ("health/knn1", "1-NN on held-out codes E(x)", None, ".3f"),
]


class TrainingSummary(TimedWork):
    """At the end of training (rank 0): grids folder, the last scores of the metrics callbacks with
    their real-data references, and mean rho(z, E(G(z))) on `n_rho` fresh z, or on as many z as the
    run trained on images (at least `MIN_RHO`) when that is fewer: the summary of a run of a few
    iterations costs no more than the run."""

    label = "summary"
    end_order = 1  # after the work whose scores it reports
    MIN_RHO = 64

    def __init__(self, n_rho: int = 2000):
        self.n_rho = n_rho
        self._start_kimg = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self._start_kimg = pl_module.kimg

    def end_of_run(self, trainer, pl_module, train_seconds: float) -> str | None:
        if trainer.is_global_zero:
            with self.working():
                self.write(trainer, pl_module, train_seconds)
        return None

    def write(self, trainer, pl_module, train_seconds: float) -> None:
        scores, reference = {}, {}
        for cb in trainer.callbacks:
            if isinstance(cb, MetricsCallback) and cb.last is not None:
                scores.update(cb.last[0])
                reference.update(cb.last[1].get("reference", {}))
        grids = next((cb.dirpath for cb in trainer.callbacks if isinstance(cb, ImageGrids)), None)
        minutes = train_seconds / 60
        trained = round(1000 * (pl_module.kimg - self._start_kimg))
        n_rho = min(self.n_rho, max(self.MIN_RHO, trained))
        rho = mean_correlation(pl_module, n_rho, seed=1)
        # in the run's result.json and the sweep summary too (the encoder metric's value, if it ran, stays)
        trainer.callback_metrics.setdefault("metrics/encoder/rho", torch.tensor(rho))
        lines = [f"== O-GAN after {pl_module.g_iter} generator iterations ({minutes:.1f} min of training) =="]
        if grids is not None:
            lines.append(f"{'grids':<44} {Path(grids)}")
        for key, label, ref_label, fmt in LINES:
            if key not in scores:
                continue
            line = f"{label:<44} {scores[key]:{fmt}}"
            if ref_label and key in reference:
                line += f"   ({ref_label}: {reference[key]:{fmt}})"
            lines.append(line)
        lines.append(f"{f'rho(z, E(G(z))) on {n_rho} fresh z (1 = E inverts G)':<44} {rho:.3f}")
        watch = next((cb for cb in trainer.callbacks if isinstance(cb, EncoderWatch)), None)
        if watch is not None and watch.best is not None:
            line = (
                f"{'best encoder (' + watch.measure + ')':<44} {watch.best:.3f} at iteration {watch.best_g_iter}: "
                f"{watch.best_path}"
            )
            if watch.alarms:
                line += (
                    f" (health alarm at iteration {', '.join(map(str, watch.alarms))}; {watch.rollbacks} rollback(s))"
                )
            lines.append(line)
        print("\n".join(lines), flush=True)
