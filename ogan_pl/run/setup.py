"""What every entry point sets up before it runs: the config's resolvers, process-wide torch
numerics, and Hydra instantiation of the run's own trainer, callbacks and loggers."""

import os
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ogan_pl.config import data_settings
from ogan_pl.utils.errors import UserError


def launch_id() -> str | None:
    """A name every rank of one job shares when an outside launcher started them (SLURM, torchrun),
    so they agree on one run directory; a requeued SLURM job gets its old directory back."""
    if "SLURM_JOB_ID" in os.environ:
        array = os.environ.get("SLURM_ARRAY_JOB_ID")
        return f"slurm-{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else f"slurm-{os.environ['SLURM_JOB_ID']}"
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id and run_id != "none":
        return f"torchrun-{run_id}"
    return None


def register_resolvers() -> None:
    """The config's own interpolations (`${wandb_offline:}`, `${run_name:...}`, `${data_settings:KEY}`),
    before it is composed."""
    resolvers = {
        # W&B runs offline unless the user opts in with WANDB_MODE=online or logger.wandb.offline=false.
        "wandb_offline": lambda: os.environ.get("WANDB_MODE", "offline") != "online",
        # hydra.run.dir: the launcher's job name, else the start time
        "run_name": lambda stamp: launch_id() or stamp,
        # model, optimizer and EMA settings that follow dataset.resolution
        data_settings.RESOLVER: data_settings.resolve,
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def instantiate_or_explain(node: Any, *args, **kwargs) -> Any:
    """hydra.utils.instantiate for the run's own trainer, callbacks and loggers (from the user's command
    line and config files, never from a checkpoint), re-raising a UserError from the target's
    constructor as itself, so it prints as one line instead of Hydra's multi-line wrapper."""
    try:
        return instantiate(node, *args, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, UserError):
            raise err.__cause__ from None
        raise


def configure_torch(cfg: DictConfig) -> None:
    """Process-wide numerics: TF32 for float32 matmuls and convolutions unless 'highest'."""
    precision = cfg.speed.float32_matmul_precision  # one of the choices of ogan_pl.config.schema.SpeedSection
    torch.set_float32_matmul_precision(precision)
    torch.backends.cudnn.allow_tf32 = precision != "highest"
