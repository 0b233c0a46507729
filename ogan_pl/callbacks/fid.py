"""FID of the (EMA) generator during training, against cached real statistics; keeps best_fid.ckpt."""
import logging
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from ogan_pl.errors import UserError
from ogan_pl.io import append_jsonl, now_iso
from ogan_pl.metrics import ImageMetrics, InceptionFeatures, add_generated, fake_noise, prepare_real_stats

log = logging.getLogger(__name__)


class FIDCallback(pl.Callback):
    """Every `every_n_steps` generator iterations and at the end: FID of `n_samples` generated images.

    Under DDP every rank generates its share of the same fixed noise and every rank takes part in
    the compute (torchmetrics sums the feature statistics); the real statistics sit on rank 0
    only, so the sum counts them once. Logs `metrics/fid`, appends a line to `results_file`, and
    writes `best_fid.ckpt` when the FID improves. The Inception network lives here, never in the
    LightningModule, so it never reaches a checkpoint.
    """

    def __init__(self, every_n_steps: int = 5000, n_samples: int = 10000, n_real: int | None = None,
                 batch_size: int = 250, seed: int = 0, use_ema: bool = True, inception_weights: str | None = None,
                 download: bool = True, antialias: bool = False, cache_dir: str = ".cache/ogan_pl",
                 checkpoint_dir: str | None = None, results_file: str | None = None):
        if every_n_steps < 1:
            raise UserError(f"callbacks.fid.every_n_steps must be >= 1, got {every_n_steps}")
        if n_samples < 2:
            raise UserError(f"callbacks.fid.n_samples must be >= 2, got {n_samples}")
        self.every_n_steps = every_n_steps
        self.n_samples = n_samples
        self.n_real = n_real
        self.batch_size = batch_size
        self.seed = seed
        self.use_ema = use_ema
        self.extractor_args = dict(weights=inception_weights, download=download, antialias=antialias)
        self.cache_dir = cache_dir
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.results_file = Path(results_file) if results_file else None
        self.metrics: ImageMetrics | None = None
        self.real_info: dict = {}
        self.best_fid = float("inf")
        self.best_g_iter = -1
        self._last_scored = -1

    def setup(self, trainer, pl_module, stage: str) -> None:
        # Rank 0 first, so only it downloads the weights (if it must); the others then find them.
        if trainer.is_global_zero:
            extractor = InceptionFeatures.load(**self.extractor_args)
        trainer.strategy.barrier("fid-weights")
        if not trainer.is_global_zero:
            extractor = InceptionFeatures.load(**{**self.extractor_args, "download": False})
        self.metrics = ImageMetrics(extractor, names=["fid"])

    def on_train_start(self, trainer, pl_module) -> None:
        self.metrics.to(pl_module.device)
        if trainer.is_global_zero:
            self.real_info = prepare_real_stats(self.metrics, trainer.datamodule, self.cache_dir, self.n_real,
                                                self.batch_size)
        trainer.strategy.barrier("fid-real-stats")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.g_iter % self.every_n_steps == 0:
            self.score(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.score(trainer, pl_module)

    def score(self, trainer, pl_module) -> float | None:
        step = pl_module.g_iter
        if self.metrics is None or step == self._last_scored:
            return None
        self._last_scored = step
        start = time.perf_counter()
        self.metrics.reset()
        z = fake_noise(self.n_samples, pl_module.z_dim, self.seed, trainer.global_rank, trainer.world_size)
        add_generated(self.metrics, pl_module, z, self.batch_size, self.use_ema)
        fid = self.metrics.compute()["fid"]
        seconds = time.perf_counter() - start
        log.info("FID %.3f at generator iteration %d (%d images, %.1f s)", fid, step, self.n_samples, seconds)
        for logger in trainer.loggers:
            logger.log_metrics({"metrics/fid": fid}, step=step)
        improved = fid < self.best_fid
        if improved:
            self.best_fid, self.best_g_iter = fid, step
        # the run's result (train.py's return value, the sweep summary) reads callback_metrics
        trainer.callback_metrics.update({"metrics/fid": torch.tensor(fid), "metrics/best_fid": torch.tensor(self.best_fid)})
        if trainer.is_global_zero and self.results_file is not None:
            append_jsonl(self.results_file, {
                "g_iter": step, "kimg": pl_module.kimg, "metrics": {"fid": fid}, "best_fid": self.best_fid,
                "protocol": self.protocol(), "wall_time_s": round(seconds, 3), "time": now_iso(), "source": "train.py"})
        if improved and self.checkpoint_dir is not None:
            trainer.save_checkpoint(self.checkpoint_dir / "best_fid.ckpt", weights_only=False)
        return fid

    def protocol(self) -> dict:
        return {"n_fake": self.n_samples, "use_ema": self.use_ema, "noise_seed": self.seed,
                "input": "uint8, rounded and clamped from [-1, 1]", **self.metrics.extractor.protocol,
                **{k: v for k, v in self.real_info.items() if k in ("n_real", "real_split")}}

    def state_dict(self) -> dict:
        return {"best_fid": self.best_fid, "best_g_iter": self.best_g_iter}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best_fid = float(state_dict.get("best_fid", float("inf")))
        self.best_g_iter = int(state_dict.get("best_g_iter", -1))
