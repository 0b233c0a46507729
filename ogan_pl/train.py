"""`python train.py`: compose, validate, build, fit. All logic of the entry point lives here."""
import contextlib
import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ogan_pl.callbacks import GeneratorStepCheckpoint
from ogan_pl.config import configure_torch, instantiate_or_explain, optimizer_steps_per_iteration, run_config, validate
from ogan_pl.distributed import GradientAllReduceDDP, make_strategy, process_rank
from ogan_pl.errors import UserError
from ogan_pl.loading import read_checkpoint, stored_config
from ogan_pl.module import OGAN
from ogan_pl.preemption import PreemptionSignals
from ogan_pl.registry import DATASETS
from ogan_pl.resume import find_resume_checkpoint
from ogan_pl.rundir import RunDirectoryLock, first_difference, save_run_config
from ogan_pl.sweep import write_result

log = logging.getLogger(__name__)


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every entry of a group such as `callbacks` or `logger` that has a _target_."""
    return [instantiate_or_explain(node) for node in (group or {}).values() if node and "_target_" in node]


def finish_wandb() -> None:
    """One W&B run per Hydra job: close it so the next job of a multirun starts its own."""
    import wandb

    if wandb.run is not None:
        wandb.finish()


def build_loggers(cfg: DictConfig, resuming: bool) -> list:
    """The `logger` group; a job resuming in its own run directory continues its W&B run there."""
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        if not node or "_target_" not in node:
            continue
        latest = Path(node.get("save_dir") or ".") / "wandb" / "latest-run"
        if resuming and node._target_.endswith("WandbLogger") and latest.exists():
            run_id = latest.resolve().name.rsplit("-", 1)[-1]  # (offline-)run-DATE_TIME-ID
            loggers.append(instantiate_or_explain(node, id=run_id, resume="allow"))
        else:
            loggers.append(instantiate_or_explain(node))
    return loggers


def build_data_and_model(cfg: DictConfig) -> tuple[pl.LightningDataModule, OGAN]:
    n_critic = cfg.train.n_critic if cfg.train["update"] == "alternating" else 1
    datamodule = DATASETS.build(run_config(cfg.dataset), "dataset", batches_per_step=n_critic)
    # bad data fails here, before a model is built; reading it (a cache build draws DataLoader seeds)
    # leaves the random stream alone, so the initial weights are the same whether or not a cache existed
    with torch.random.fork_rng(devices=[]):
        datamodule.setup("fit")
    return datamodule, OGAN(run_config(cfg))


def build_trainer(cfg: DictConfig, callbacks: list, resuming: bool = False, **overrides) -> pl.Trainer:
    trainer: pl.Trainer = instantiate_or_explain(
        cfg.trainer,
        callbacks=callbacks,
        logger=build_loggers(cfg, resuming) or False,
        strategy=make_strategy(cfg.trainer.get("strategy", "auto"), cfg.trainer.devices, cfg.trainer.num_nodes),
        # Lightning counts each optimizer's steps; train.steps counts generator iterations.
        # The training batches shard themselves over ranks (ogan_pl.data.order): no DistributedSampler.
        **{"max_steps": cfg.train.steps * optimizer_steps_per_iteration(cfg.train), "use_distributed_sampler": False,
           **overrides},
    )
    strategy = trainer.strategy
    relaunches = (isinstance(strategy, GradientAllReduceDDP) and strategy.start_method == "popen"
                  and not strategy.cluster_environment.creates_processes_externally and trainer.num_devices > 1)
    if relaunches and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise UserError("a Hydra multirun cannot re-launch DDP ranks as scripts (trainer.strategy=ddp); use "
                        "trainer.strategy=ddp_spawn, or hydra/launcher=slurm where SLURM starts the ranks")
    return trainer


#: what a checkpoint's weights and optimizer states are shaped by: a run resumes only with the same
RESUME_KEYS = (("model",), ("ogan", "disc_head"), ("optim", "encoder", "_name_"), ("optim", "generator", "_name_"))


def check_resumable(cfg: DictConfig, checkpoint: dict, where: str) -> None:
    """Refuse a checkpoint whose model or optimizers differ from this run's, naming the first difference."""
    stored, current = stored_config(checkpoint), run_config(cfg)
    for path in RESUME_KEYS:
        a, b = stored, current
        for key in path:
            a = a.get(key) if isinstance(a, dict) else None
            b = b.get(key) if isinstance(b, dict) else None
        difference = first_difference(a, b, ".".join(path))
        if difference:
            raise UserError(f"{where} was trained with another model or optimizer ({difference}); resume with "
                            "the same settings, or start afresh (resume=never, or another hydra.run.dir)")


def resume_checkpoint(cfg: DictConfig, out_dir: Path) -> str | None:
    """ckpt_path if given; else with resume=auto the run directory's newest complete checkpoint.
    Either is read through ogan_pl.loading first, so a hostile or broken file is one line here, and
    must have been trained with this run's model and optimizers."""
    if cfg.get("ckpt_path"):
        try:
            checkpoint = read_checkpoint(cfg.ckpt_path)
        except UserError as err:
            raise UserError(f"ckpt_path={cfg.ckpt_path}: {err}") from None
        check_resumable(cfg, checkpoint, f"ckpt_path={cfg.ckpt_path}")
        return str(cfg.ckpt_path)
    if cfg.get("resume", "auto") != "auto":
        return None
    checkpoint_cfg = (cfg.get("callbacks") or {}).get("checkpoint") or {}
    path = find_resume_checkpoint(checkpoint_cfg.get("dirpath") or out_dir / "checkpoints")
    if path is None:
        return None
    try:
        checkpoint = read_checkpoint(path)
    except UserError as err:
        raise UserError(f"resume=auto: {err} (start afresh with resume=never, or another run directory)") from None
    check_resumable(cfg, checkpoint, f"resume=auto: {path}")
    if process_rank() == 0:
        log.info("resume=auto: continuing from %s", path)
    return str(path)


def run_result(trainer: pl.Trainer, model: OGAN) -> dict:
    """The finished job's final logged scalars (losses, rho, FID if measured) and its length.

    Read from trainer.callback_metrics, which Lightning also brings back from ddp_spawn's ranks.
    """
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    g_iter = int(metrics.pop("step", model.g_iter))
    return {"g_iter": g_iter, "kimg": round(metrics.pop("progress/kimg", model.kimg), 3), "metrics": metrics}


def train(cfg: DictConfig) -> float | dict:
    """Train one run. Returns `cfg.optimized_metric`'s final value when set (what a sweeper
    minimises), else the run's result (also written to result.json in the run directory)."""
    validate(cfg)
    configure_torch(cfg)
    out_dir = Path(cfg.paths.output_dir)
    # ranks started by torchrun / SLURM / Lightning share the run directory: rank 0 holds it
    with RunDirectoryLock(out_dir) if process_rank() == 0 else contextlib.nullcontext():
        ckpt_path = resume_checkpoint(cfg, out_dir)  # refuses before anything is written
        if process_rank() == 0:
            save_run_config(cfg, out_dir)
        return fit(cfg, out_dir, ckpt_path)


def fit(cfg: DictConfig, out_dir: Path, ckpt_path: str | None) -> float | dict:
    pl.seed_everything(cfg.seed, workers=True)
    callbacks = instantiate_group(cfg.get("callbacks"))  # cheap: their bad values fail before the data is read
    datamodule, model = build_data_and_model(cfg)
    # checkpoints last, so a checkpoint holds the state other callbacks updated at the same step (best FID)
    callbacks.sort(key=lambda cb: isinstance(cb, GeneratorStepCheckpoint))
    trainer = build_trainer(cfg, callbacks, resuming=ckpt_path is not None)

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
            will_requeue = signals.requeue_requested
            log.warning("stopped by %s at generator iteration %d; last.ckpt saved; %s", signals.received.name,
                        model.g_iter, "requeueing the job" if will_requeue else
                        "run again with the same run directory (resume=auto) to continue")
            if will_requeue:
                signals.requeue()  # submitit's handler exits here
            raise SystemExit(128 + int(signals.received))

    result = run_result(trainer, model)
    if trainer.is_global_zero:
        result = write_result(out_dir, result)
        log.info("finished at generator iteration %d (%.1f kimg); outputs in %s", result["g_iter"], result["kimg"],
                 out_dir)
    name = cfg.get("optimized_metric")
    if not name:
        return result
    if name not in result["metrics"]:
        raise UserError(f"optimized_metric={name} was not logged by this run (logged: "
                        f"{', '.join(sorted(result['metrics']))}); for metrics/fid add callbacks=fid")
    return result["metrics"][name]
