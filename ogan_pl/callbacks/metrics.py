"""Registered metrics of the (EMA) generator and encoder during training; keeps best_<monitor>.ckpt."""

import logging
import math
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ogan_pl.callbacks.work import TimedWork
from ogan_pl.metrics import MetricContext, MetricSet
from ogan_pl.registry.values import NonNegativeInt, PositiveInt, at_least, checked_arguments, one_of
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import append_jsonl, now_iso
from ogan_pl.utils.stopping import deferred

log = logging.getLogger(__name__)


AT_END = ("auto", "always", "never")


@checked_arguments("callbacks.fid")
class MetricsCallback(TimedWork):
    """Every `every_n_steps` generator iterations and at the end: the metrics named in `names` (any
    registered metric, `ogan-parts`), with `n_samples` generated images from fixed noise.

    At the end, `at_end`: always; never; or auto, which scores only when the run is long enough for
    it to be bounded by the training: it has scored during this process's training and that scoring
    took no longer than the training so far (a run of a few iterations ends in seconds, and says how
    to score it with evaluate.py).

    Under DDP, distributed metrics (FID/KID/IS) have every rank generate its share of the noise and
    take part in the compute (torchmetrics sums the feature statistics; the real statistics sit on
    rank 0 only, so the sum counts them once); the others run on rank 0. Logs `metrics/<score>`,
    appends a line to `results_file`, and writes `best_<monitor>.ckpt` when `monitor` improves.
    Feature networks live here, never in the LightningModule, so they never reach a checkpoint.
    """

    def __init__(
        self,
        names=("fid",),
        monitor: str | None = "fid",
        every_n_steps: PositiveInt = 5000,
        n_samples: at_least(2) = 10000,
        n_real: at_least(2) | None = None,
        seed: NonNegativeInt = 0,
        use_ema: bool = True,
        metrics: dict | None = None,
        cache_dir: str = ".cache/ogan_pl",
        checkpoint_dir: str | None = None,
        results_file: str | None = None,
        optional: bool = False,
        at_end: one_of(AT_END) = "auto",
    ):
        options = (
            OmegaConf.to_container(metrics, resolve=True) if isinstance(metrics, DictConfig) else dict(metrics or {})
        )
        self.names = list(names)
        self.metric_set = MetricSet(self.names, options)
        self.metric_set.check_n_fake(n_samples, f"n_samples of the metrics callback of {self.names}")
        self.options = options
        self.monitor = monitor
        self.every_n_steps = every_n_steps
        self.n_samples = n_samples
        self.n_real = n_real
        self.seed = seed
        self.use_ema = use_ema
        self.cache_dir = cache_dir
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.results_file = Path(results_file) if results_file else None
        self.best = math.inf if self._lower_is_better else -math.inf
        self.best_g_iter = -1
        self.optional = optional
        self.at_end = at_end
        self.last: tuple[dict, dict] | None = None  # the latest (scores, protocol), for the summary
        self._last_scored = -1
        self.last_seconds: float | None = None  # how long the latest scoring of this process took
        self._ready = False

    @property
    def state_key(self) -> str:
        """Unique per configuration: several metrics callbacks (callbacks.quality, callbacks.fid) each
        keep their own best value in a checkpoint."""
        return self._generate_state_key(names=self.names, monitor=self.monitor)

    @property
    def _lower_is_better(self) -> bool:
        return self.monitor is None or self.metric_set.lower_is_better(self.monitor)

    def _context(self, trainer, pl_module) -> MetricContext:
        o = self.options
        return MetricContext(
            model=pl_module,
            datamodule=trainer.datamodule,
            n_fake=self.n_samples,
            n_real=self.n_real,
            batch_size=o.get("batch_size", 250),
            seed=self.seed,
            use_ema=self.use_ema,
            cache_dir=self.cache_dir,
            inception_weights=o.get("inception_weights"),
            download=o.get("download", True),
            antialias=o.get("antialias", False),
            classifier=o.get("classifier"),
            rank=trainer.global_rank,
            world_size=trainer.world_size,
        )

    def setup(self, trainer, pl_module, stage: str) -> None:
        # Rank 0 first, so only it downloads weights (if it must); the others then find them.
        if trainer.is_global_zero:
            self._setup_metrics(trainer, pl_module)
        trainer.strategy.barrier("metrics-setup")
        if not trainer.is_global_zero:
            self._setup_metrics(trainer, pl_module)
        self._ready = bool(self.metric_set.metrics)

    def _setup_metrics(self, trainer, pl_module) -> None:
        """With `optional`, a metric this run cannot serve (no labels, no weights) is dropped with one
        warning instead of stopping the run: the default callbacks suit every dataset."""
        if not self.optional:
            return self.metric_set.setup(self._context(trainer, pl_module))
        for name, metric in list(self.metric_set.metrics.items()):
            try:
                metric.setup(self._context(trainer, pl_module), self.metric_set.shared)
            except UserError as err:
                if trainer.is_global_zero:
                    log.warning("metric %s skipped: %s", name, err)
                del self.metric_set.metrics[name]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.g_iter % self.every_n_steps == 0:
            self.score(trainer, pl_module)

    @property
    def label(self) -> str:
        return f"{self.key or 'metrics'} metrics"

    def end_of_run(self, trainer, pl_module, train_seconds: float) -> str | None:
        if not self._ready or pl_module.g_iter == self._last_scored:
            return None
        cost = self.last_seconds  # the latest scoring's: the first one also trains or loads feature networks
        if self.at_end == "never" or (self.at_end == "auto" and cost is not None and cost > train_seconds):
            why = (
                "at_end=never"
                if self.at_end == "never"
                else f"a scoring takes {cost:.0f} s, longer than this run's training ({train_seconds:.0f} s)"
            )
        elif self.at_end == "auto" and cost is None:
            why = (
                f"not scored during this run's training (every_n_steps={self.every_n_steps}), so its cost "
                "is not known to be smaller than the training's"
            )
        else:
            self.score(trainer, pl_module)
            return None
        last = next((cb.last_path for cb in trainer.callbacks if hasattr(cb, "last_path")), "CHECKPOINT")
        return (
            f"{why}; for these scores set {self.option}.at_end=always, or run python evaluate.py "
            f"ckpt={last} metrics.names=[{','.join(self.names)}]"
        )

    def score(self, trainer, pl_module) -> dict | None:
        step = pl_module.g_iter
        if not self._ready or step == self._last_scored:
            return None
        self._last_scored = step
        start = time.perf_counter()
        with self.working():
            scores, protocol = self.metric_set.compute(self._context(trainer, pl_module))
        seconds = self.last_seconds = time.perf_counter() - start
        self.last = (scores, protocol)
        if not trainer.is_global_zero:
            self._notify(trainer, pl_module, None)
            return scores
        log.info(
            "metrics at generator iteration %d: %s (%.1f s)",
            step,
            ", ".join(f"{k} {v:.4g}" for k, v in scores.items()),
            seconds,
        )
        for logger in trainer.loggers:
            logger.log_metrics({f"metrics/{k}": v for k, v in scores.items()}, step=step)
        improved = False
        if self.monitor is not None and self.monitor in scores:
            value = scores[self.monitor]
            improved = value < self.best if self._lower_is_better else value > self.best
            if improved:
                self.best, self.best_g_iter = value, step
        # the run's result (train.py's return value, the sweep summary) reads callback_metrics
        trainer.callback_metrics.update({f"metrics/{k}": torch.tensor(v) for k, v in scores.items()})
        record = {
            "g_iter": step,
            "kimg": pl_module.kimg,
            "metrics": scores,
            "protocol": protocol,
            "wall_time_s": round(seconds, 3),
            "time": now_iso(),
            "source": "train.py",
        }
        if self.monitor is not None:
            trainer.callback_metrics[f"metrics/best_{self.monitor}"] = torch.tensor(self.best)
            record[f"best_{self.monitor}"] = self.best
        if self.results_file is not None:
            append_jsonl(self.results_file, record)
        if improved and self.checkpoint_dir is not None:
            name = self.monitor.replace("/", "_")
            with deferred():
                trainer.save_checkpoint(self.checkpoint_dir / f"best_{name}.ckpt", weights_only=False)
        self._notify(trainer, pl_module, scores)
        return scores

    @staticmethod
    def _notify(trainer, pl_module, scores: dict | None) -> None:
        """Callbacks that act on scores (the encoder's watchdog), on every rank; rank 0 passes them."""
        for cb in trainer.callbacks:
            if hasattr(cb, "on_scores"):
                cb.on_scores(trainer, pl_module, scores)

    def state_dict(self) -> dict:
        return {f"best_{self.monitor}": self.best, "best_g_iter": self.best_g_iter}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = float(state_dict.get(f"best_{self.monitor}", self.best))
        self.best_g_iter = int(state_dict.get("best_g_iter", -1))
