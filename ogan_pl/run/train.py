"""`python train.py` / `ogan-train`: compose, validate, build, fit. All logic of the entry point lives here."""

import contextlib
import logging
import signal
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ogan_pl.callbacks import EndOfRun, GeneratorStepCheckpoint, TimedWork
from ogan_pl.checkpoints import Checkpoint, find_resume_checkpoint, read_checkpoint
from ogan_pl.config.checks import check_training
from ogan_pl.config.data_settings import settings_line
from ogan_pl.config.recipe import Recipe
from ogan_pl.module import OGAN, optimizer_steps_per_iteration
from ogan_pl.run.cli import run
from ogan_pl.run.rundir import RunDirectoryLock, first_difference, save_run_config
from ogan_pl.run.setup import configure_torch, instantiate_or_explain
from ogan_pl.run.sweeps import write_result
from ogan_pl.utils.distributed import GradientAllReduceDDP, make_strategy, process_rank
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.nested import get_path, plain_config
from ogan_pl.utils.stopping import StopRequested, StopSignals

log = logging.getLogger(__name__)


def build_callbacks(group: DictConfig | None) -> list:
    """The `callbacks` group, in order, checkpoints last (a checkpoint holds the state other callbacks
    updated at the same step, e.g. a best metric), then `EndOfRun`, which runs their end-of-run work
    after the final last.ckpt is written."""
    callbacks = []
    for key, node in (group or {}).items():
        if node and "_target_" in node:
            callback = instantiate_or_explain(node)
            if isinstance(callback, TimedWork):
                callback.key = str(key)
            callbacks.append(callback)
    callbacks.sort(key=lambda cb: isinstance(cb, GeneratorStepCheckpoint))
    return [*callbacks, EndOfRun()]


def finish_wandb() -> None:
    """One W&B run per Hydra job: close it so the next job of a multirun starts its own."""
    wandb = sys.modules.get("wandb")  # imported only by the W&B logger: a run without it has nothing to close
    if wandb is not None and wandb.run is not None:
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


def build_data_and_model(cfg: DictConfig, recipe: Recipe) -> tuple[pl.LightningDataModule, OGAN]:
    """The run's DataModule (its data read and checked) and model, from the checked recipe."""
    n_critic = cfg.train.n_critic if cfg.train["update"] == "alternating" else 1
    datamodule = recipe.parts["dataset"].build(batches_per_step=n_critic)
    # bad data fails here, before a model is built; reading it (a cache build draws DataLoader seeds)
    # leaves the random stream alone, so the initial weights are the same whether or not a cache existed
    with torch.random.fork_rng(devices=[]):
        datamodule.setup("fit")
    if process_rank() == 0:
        train_set = getattr(datamodule, "train_set", None)
        log.info(settings_line(cfg, len(train_set) if train_set is not None else None))
    return datamodule, OGAN(recipe)


def build_trainer(cfg: DictConfig, callbacks: list, resuming: bool = False, **overrides) -> pl.Trainer:
    trainer: pl.Trainer = instantiate_or_explain(
        cfg.trainer,
        callbacks=callbacks,
        logger=build_loggers(cfg, resuming) or False,
        strategy=make_strategy(cfg.trainer.get("strategy", "auto"), cfg.trainer.devices, cfg.trainer.num_nodes),
        # Lightning counts each optimizer's steps; train.steps counts generator iterations.
        # The training batches shard themselves over ranks (ogan_pl.data.order): no DistributedSampler.
        **{
            "max_steps": cfg.train.steps * optimizer_steps_per_iteration(cfg.train),
            "use_distributed_sampler": False,
            **overrides,
        },
    )
    strategy = trainer.strategy
    relaunches = (
        isinstance(strategy, GradientAllReduceDDP)
        and strategy.start_method == "popen"
        and not strategy.cluster_environment.creates_processes_externally
        and trainer.num_devices > 1
    )
    if relaunches and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise UserError(
            "a Hydra multirun cannot re-launch DDP ranks as scripts (trainer.strategy=ddp); use "
            "trainer.strategy=ddp_spawn, or hydra/launcher=slurm where SLURM starts the ranks"
        )
    return trainer


#: what a checkpoint's weights and optimizer states are shaped by: a run resumes only with the same
RESUME_KEYS = (("model",), ("ogan", "disc_head"), ("optim", "encoder", "_name_"), ("optim", "generator", "_name_"))


def check_resumable(cfg: DictConfig, checkpoint: Checkpoint, where: str) -> None:
    """Refuse a checkpoint whose model or optimizers differ from this run's, naming the first difference."""
    stored, current = checkpoint.recipe.config, plain_config(cfg)
    for path in RESUME_KEYS:
        difference = first_difference(get_path(stored, path), get_path(current, path), ".".join(path))
        if difference:
            raise UserError(
                f"{where} was trained with another model or optimizer ({difference}); resume with "
                "the same settings, or start afresh (resume=never, or another hydra.run.dir)"
            )


def resume_checkpoint(cfg: DictConfig, out_dir: Path) -> str | None:
    """ckpt_path if given; else with resume=auto the run directory's newest complete checkpoint.
    Either is read through ogan_pl.checkpoints first, so a hostile or broken file is one line here, and
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


def report_stop(signals: StopSignals, stop: SIGTERMException, model: OGAN | None, callbacks: list) -> None:
    """One line on what a stop signal ended and what it skipped; requeue if asked; exit 128 + signal."""
    received = signals.received or getattr(stop, "signum", None) or signal.SIGTERM
    checkpoint = next((cb for cb in callbacks if isinstance(cb, GeneratorStepCheckpoint)), None)
    if isinstance(stop, StopRequested) and not (checkpoint is not None and checkpoint.trained(model)):
        what = f"during {stop.during}, before any training step; the run directory's checkpoints are unchanged"
    else:
        what = f"at generator iteration {model.g_iter}"
        if isinstance(stop, StopRequested):
            what += f", during {stop.during}"
            if stop.skipped:
                what += f" (skipped: {', '.join(stop.skipped)})"
        what += f"; last.ckpt saved ({checkpoint.last_path})" if checkpoint is not None else ""
    will_requeue = signals.requeue_requested
    if process_rank() == 0:
        log.warning(
            "stopped by %s %s; %s",
            received.name,
            what,
            "requeueing the job" if will_requeue else "run again with the same run directory (resume=auto) to continue",
        )
    if will_requeue:
        signals.requeue()  # submitit's handler exits here
    raise SystemExit(128 + int(received))


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
    recipe = check_training(cfg)
    configure_torch(cfg)
    out_dir = Path(cfg.paths.output_dir)
    # ranks started by torchrun / SLURM / Lightning share the run directory: rank 0 holds it
    with RunDirectoryLock(out_dir) if process_rank() == 0 else contextlib.nullcontext():
        ckpt_path = resume_checkpoint(cfg, out_dir)  # refuses before anything is written
        if process_rank() == 0:
            save_run_config(cfg, out_dir)
        return fit(cfg, recipe, out_dir, ckpt_path)


def fit(cfg: DictConfig, recipe: Recipe, out_dir: Path, ckpt_path: str | None) -> float | dict:
    pl.seed_everything(cfg.seed, workers=True)
    with StopSignals(requeue=cfg.preemption.requeue) as signals:
        model, callbacks = None, []
        try:
            callbacks = build_callbacks(cfg.get("callbacks"))  # cheap: bad values fail before the data is read
            datamodule, model = build_data_and_model(cfg, recipe)
            trainer = build_trainer(cfg, callbacks, resuming=ckpt_path is not None)
            # weights_only: a checkpoint cannot run code while it is loaded
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except SIGTERMException as stop:  # a stop signal (ogan_pl.utils.stopping): last.ckpt holds the latest step
            report_stop(signals, stop, model, callbacks)
        finally:
            finish_wandb()

    result = run_result(trainer, model)
    if trainer.is_global_zero:
        result = write_result(out_dir, result)
        log.info(
            "finished at generator iteration %d (%.1f kimg); outputs in %s", result["g_iter"], result["kimg"], out_dir
        )
    name = cfg.get("optimized_metric")
    if not name:
        return result
    if name not in result["metrics"]:
        raise UserError(
            f"optimized_metric={name} was not logged by this run (logged: "
            f"{', '.join(sorted(result['metrics']))}); for metrics/fid add callbacks=fid"
        )
    return result["metrics"][name]


def main() -> None:
    """The `ogan-train` console script (and `python train.py`)."""
    run("config", train, handles_stops=True)


if __name__ == "__main__":
    main()
