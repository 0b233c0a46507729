"""`python train.py`: compose, validate, build, fit. All logic of the entry point lives here."""
import json
import logging
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ogan_pl.callbacks import GeneratorStepCheckpoint
from ogan_pl.config import instantiate_or_explain, optimizer_steps_per_iteration, validate
from ogan_pl.distributed import GradientAllReduceDDP, make_strategy, process_rank
from ogan_pl.errors import UserError
from ogan_pl.io import atomic_write
from ogan_pl.module import OGAN
from ogan_pl.preemption import PreemptionSignals
from ogan_pl.resume import find_resume_checkpoint
from ogan_pl.sweep import RESULT_FILE

log = logging.getLogger(__name__)


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every entry of a group such as `callbacks` or `logger` that has a _target_."""
    return [instantiate_or_explain(node) for node in (group or {}).values() if node and "_target_" in node]


def finish_wandb() -> None:
    """One W&B run per Hydra job: close it so the next job of a multirun starts its own."""
    import wandb

    if wandb.run is not None:
        wandb.finish()


def build_trainer(cfg: DictConfig, callbacks: list) -> pl.Trainer:
    trainer: pl.Trainer = instantiate_or_explain(
        cfg.trainer,
        callbacks=callbacks,
        logger=instantiate_group(cfg.get("logger")) or False,
        strategy=make_strategy(cfg.trainer.get("strategy", "auto"), cfg.trainer.devices, cfg.trainer.num_nodes),
        # Lightning counts each optimizer's steps; train.steps counts generator iterations.
        max_steps=cfg.train.steps * optimizer_steps_per_iteration(cfg.train),
    )
    strategy = trainer.strategy
    relaunches = (isinstance(strategy, GradientAllReduceDDP) and strategy.start_method == "popen"
                  and not strategy.cluster_environment.creates_processes_externally and trainer.num_devices > 1)
    if relaunches and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise UserError("a Hydra multirun cannot re-launch DDP ranks as scripts (trainer.strategy=ddp); use "
                        "trainer.strategy=ddp_spawn, or hydra/launcher=slurm where SLURM starts the ranks")
    return trainer


def resume_checkpoint(cfg: DictConfig, out_dir: Path) -> str | None:
    """ckpt_path if given; else with resume=auto the run directory's newest complete checkpoint."""
    if cfg.get("ckpt_path"):
        if not Path(cfg.ckpt_path).is_file():
            raise UserError(f"ckpt_path={cfg.ckpt_path} does not exist; give the path of a .ckpt file")
        return str(cfg.ckpt_path)
    if cfg.get("resume", "auto") != "auto":
        return None
    checkpoint_cfg = (cfg.get("callbacks") or {}).get("checkpoint") or {}
    path = find_resume_checkpoint(checkpoint_cfg.get("dirpath") or out_dir / "checkpoints")
    if path is not None:
        log.info("resume=auto: continuing from %s", path)
    return None if path is None else str(path)


def run_result(trainer: pl.Trainer, model: OGAN, out_dir: Path) -> dict:
    """The finished job's final logged scalars (losses, rho, FID if measured) and its length.

    Read from trainer.callback_metrics, which Lightning also brings back from ddp_spawn's ranks.
    """
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    g_iter = int(metrics.pop("step", model.g_iter))
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return {"g_iter": g_iter, "kimg": metrics.pop("progress/kimg", model.kimg), "metrics": metrics,
            "overrides": overrides, "output_dir": str(out_dir)}


def train(cfg: DictConfig) -> float | dict:
    """Train one run. Returns `cfg.optimized_metric`'s final value when set (what a sweeper
    minimises), else the run's result (also written to RESULT_FILE in the run directory)."""
    validate(cfg)
    out_dir = Path(cfg.paths.output_dir)
    if process_rank() == 0:  # ranks started by torchrun / SLURM / Lightning share this directory
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
    trainer = build_trainer(cfg, callbacks)
    ckpt_path = resume_checkpoint(cfg, out_dir)

    with PreemptionSignals(requeue=cfg.preemption.requeue) as signals:
        try:
            # weights_only: a checkpoint cannot run code while it is loaded
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            stopped = False
        except SIGTERMException:  # Lightning stopped between two steps; last.ckpt was saved then
            signals.note_sigterm()
            stopped = True
        finally:
            finish_wandb()
        if stopped:
            requeued = signals.requeue()
            log.warning("stopped by %s at generator iteration %d; last.ckpt saved; %s", signals.received.name,
                        model.g_iter, "requeued" if requeued else "run again with the same run directory "
                        "(resume=auto) to continue")
            raise SystemExit(128 + int(signals.received))

    result = run_result(trainer, model, out_dir)
    if trainer.is_global_zero:
        atomic_write(out_dir / RESULT_FILE, lambda f: f.write(json.dumps(result, indent=2).encode()))
    log.info("finished at generator iteration %d (%.1f kimg); outputs in %s", result["g_iter"], result["kimg"], out_dir)
    name = cfg.get("optimized_metric")
    if not name:
        return result
    if name not in result["metrics"]:
        raise UserError(f"optimized_metric={name} was not logged by this run (logged: "
                        f"{', '.join(sorted(result['metrics']))}); for metrics/fid add callbacks=fid")
    return result["metrics"][name]
