"""The few lines a newcomer reads when training ends: where the grids are, and how good G and E
are, each number next to the same number for real data."""
import logging
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from ogan_pl.callbacks.images import ImageGrids
from ogan_pl.callbacks.metrics import MetricsCallback
from ogan_pl.metrics.encoder import mean_correlation

log = logging.getLogger(__name__)

#: (score, what it is, what the real-data reference is called, format)
LINES = [
    ("recon_classifier_accuracy", "reconstructions keep the label", "real held-out images", ".3f"),
    ("recon_classifier_agreement", "reconstructions agree with the original", None, ".3f"),
    ("is_classifier", "class-IS of samples (max = classes)", "real held-out images", ".2f"),
    ("fd_classifier", "FD in classifier features (lower better)", "real held-out vs training", ".2f"),
    ("fid", "FID (Inception)", None, ".2f"),
]


class TrainingSummary(pl.Callback):
    """At the end of training (rank 0): grids folder, the last scores of the metrics callbacks with
    their real-data references, and mean rho(z, E(G(z))) on `n_rho` fresh z."""

    def __init__(self, n_rho: int = 2000):
        self.n_rho = n_rho
        self._start = time.perf_counter()

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        scores, reference = {}, {}
        for cb in trainer.callbacks:
            if isinstance(cb, MetricsCallback) and cb.last is not None:
                scores.update(cb.last[0])
                reference.update(cb.last[1].get("reference", {}))
        grids = next((cb.dirpath for cb in trainer.callbacks if isinstance(cb, ImageGrids)), None)
        minutes = (time.perf_counter() - self._start) / 60
        rho = mean_correlation(pl_module, self.n_rho, seed=1)
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
        lines.append(f"{'rho(z, E(G(z))) on fresh z (1 = E inverts G)':<44} {rho:.3f}")
        print("\n".join(lines), flush=True)
