"""`python train.py`: compose, validate, build, fit. All logic of the entry point lives here."""
import logging
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from ogan_pl.callbacks import GeneratorStepCheckpoint
from ogan_pl.config import instantiate_or_explain, optimizer_steps_per_iteration, validate
from ogan_pl.module import OGAN

log = logging.getLogger(__name__)


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every entry of a group such as `callbacks` or `logger` that has a _target_."""
    return [instantiate_or_explain(node) for node in (group or {}).values() if node and "_target_" in node]


def finish_wandb() -> None:
    """One W&B run per Hydra job: close it so the next job of a multirun starts its own."""
    import wandb

    if wandb.run is not None:
        wandb.finish()


def train(cfg: DictConfig) -> dict:
    validate(cfg)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out_dir / "config.yaml", resolve=True)
    pl.seed_everything(cfg.seed, workers=True)

    n_critic = cfg.train.n_critic if cfg.train["update"] == "alternating" else 1
    datamodule = instantiate_or_explain(cfg.dataset, batches_per_step=n_critic)
    datamodule.setup("fit")  # bad data fails here, before a model is built
    model = OGAN(OmegaConf.to_container(cfg, resolve=True))
    callbacks = instantiate_group(cfg.get("callbacks"))
    # checkpoints last, so a checkpoint holds the state other callbacks updated at the same step (best FID)
    callbacks.sort(key=lambda cb: isinstance(cb, GeneratorStepCheckpoint))
    trainer: pl.Trainer = instantiate_or_explain(
        cfg.trainer,
        callbacks=callbacks,
        logger=instantiate_group(cfg.get("logger")) or False,
        # Lightning counts each optimizer's steps; train.steps counts generator iterations.
        max_steps=cfg.train.steps * optimizer_steps_per_iteration(cfg.train),
    )
    try:
        # weights_only: a checkpoint cannot run code while it is loaded
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    finally:
        finish_wandb()
    log.info("finished at generator iteration %d (%.1f kimg); outputs in %s", model.g_iter, model.kimg, out_dir)
    return {"g_iter": model.g_iter, "kimg": model.kimg, "output_dir": str(out_dir)}
