"""Config checks that run before anything heavy; Hydra instantiation of the run's own callbacks and loggers."""
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ogan_pl.errors import UserError



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


def _register_resolvers() -> None:
    resolvers = {
        # W&B runs offline unless the user opts in with WANDB_MODE=online or logger.wandb.offline=false.
        "wandb_offline": lambda: os.environ.get("WANDB_MODE", "offline") != "online",
        # hydra.run.dir: the launcher's job name, else the start time
        "run_name": lambda stamp: launch_id() or stamp,
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


_register_resolvers()


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


MATMUL_PRECISIONS = ("highest", "high", "medium")


def configure_torch(cfg: DictConfig) -> None:
    """Process-wide numerics: TF32 for float32 matmuls and convolutions unless 'highest'."""
    precision = cfg.speed.get("float32_matmul_precision", "high")
    if precision not in MATMUL_PRECISIONS:
        raise UserError(f"speed.float32_matmul_precision={precision!r} must be one of {', '.join(MATMUL_PRECISIONS)} "
                        "(highest: strict fp32; high: TF32)")
    import torch

    torch.set_float32_matmul_precision(precision)
    torch.backends.cudnn.allow_tf32 = precision != "highest"


def optimizer_steps_per_iteration(train_cfg: Mapping) -> int:
    """Lightning counts every optimizer step in global_step: n_critic E steps + 1 G step, or the joint
    update's E and G steps."""
    return 2 if train_cfg["update"] == "joint" else int(train_cfg["n_critic"]) + 1


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def validate(cfg: DictConfig, schema=None) -> None:
    """Reject impossible values with one line naming the key and the fix: ogan_pl's own sections and
    unknown keys by their schema (ogan_pl.schema), each part's arguments by its signature and its own
    checks (see check_parts), the trainer by Lightning's signature; then what ties values together.
    `schema`: the model of the whole config (ogan_pl.schema.TrainConfig, or one that extends it)."""
    from ogan_pl.schema import TrainConfig, check_sections, check_trainer

    check_sections(run_config(cfg), schema or TrainConfig)
    check_parts(cfg)
    check_trainer(run_config(cfg.trainer))
    ds, train = cfg.dataset, cfg.train
    res = ds.resolution
    _require(isinstance(res, int) and res >= 8, f"dataset.resolution={res} must be an integer >= 8 (e.g. 64)")
    _require(ds.channels in (1, 3), f"dataset.channels={ds.channels} must be 1 (grayscale) or 3 (RGB)")
    _require(isinstance(ds.batch_size, int) and ds.batch_size >= 2,
             f"dataset.batch_size={ds.batch_size} must be an integer >= 2 (BatchNorm needs a batch)")
    _require(ds.get("num_workers", 0) >= 0, f"dataset.num_workers={ds.num_workers} must be >= 0")
    # dataset.root is checked by the DataModule, which knows how to get its data (see train.py)
    _require(not (train["update"] == "joint" and train.n_critic != 1),
             "train.update=joint makes one update of E and G together; it needs train.n_critic=1")
    max_steps = cfg.trainer.get("max_steps", -1)
    _require(max_steps in (None, -1),
             f"trainer.max_steps={max_steps} counts every optimizer step (E and G); "
             "set the training length in generator iterations with train.steps instead")

    trainer = cfg.trainer
    if trainer.get("sync_batchnorm"):
        _require(trainer.get("accelerator") != "cpu",
                 "trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm has no CPU kernel); "
                 "drop it on CPU")
        _require(not getattr(build_loss(cfg), "requires_real_grad", False) and cfg.loss.get("gp_weight", 0) == 0,
                 "trainer.sync_batchnorm=true cannot take the double backward of a gradient penalty "
                 "(loss.gp_weight / loss.r1_gamma); use loss=gan_qp or loss=hinge with it")

    for name, logger in (cfg.get("logger") or {}).items():
        if logger and "TensorBoardLogger" in str(logger.get("_target_", "")):
            try:
                import tensorboard  # noqa: F401
            except ImportError:
                raise UserError("logger=tensorboard needs the tensorboard package: "
                                "pip install tensorboard (or pick logger=wandb/csv/none)") from None


def run_config(cfg: DictConfig) -> dict:
    """The composed config as plain containers, resolved."""
    return OmegaConf.to_container(cfg, resolve=True)


def check_parts(cfg: DictConfig) -> None:
    """Import the user's plugins, then check every part the config names (registered name, known
    arguments, plain values) and let the architecture and loss check their own arguments. Cheap:
    builds no network, reads no data."""
    from ogan_pl.loading import check_recipe, recipe
    from ogan_pl.parts import load_plugins
    from ogan_pl.registry import ARCHITECTURES, AUGMENTS, DATASETS, LOSSES

    load_plugins(cfg.get("plugins") or [])
    parts = check_recipe(recipe(run_config(cfg)))
    ARCHITECTURES.build(parts["model"], "model")
    LOSSES.build(parts["loss"], "loss")
    if "augment" in parts:
        AUGMENTS.build(parts["augment"], "augment")
    if "dataset" in parts:  # a DataModule's constructor checks its values; it reads no data
        DATASETS.build(parts["dataset"], "dataset")


def build_loss(cfg: DictConfig):
    from ogan_pl.registry import LOSSES

    return LOSSES.build(run_config(cfg.loss), "loss")


def check_group_choices(argv: list[str], conf_dir: Path) -> None:
    """Unknown config-group options (`loss=foo`) fail with one line listing the valid ones.

    Hydra would print a multi-line error and exit 1; users sweep these, so say it plainly. Files
    whose name starts with "_" are bases of the group's options, not options. With
    `hydra.searchpath=[...]` (a user's own config folders) Hydra itself checks the choices.
    """
    if any(arg.lstrip("+").startswith("hydra.searchpath=") for arg in argv):
        return
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        group_dir = conf_dir / key
        # hydra/launcher, hydra/sweeper: Hydra's plugins add options that are not in conf/
        if "." in key or key.startswith("hydra/") or not group_dir.is_dir() or "(" in value:
            continue
        options = sorted(p.stem for p in group_dir.glob("*.yaml") if not p.stem.startswith("_"))
        for choice in value.split(","):
            if choice in ("null", "") or choice in options:
                continue
            print(f"error: unknown {key} {choice!r}; choose one of: {', '.join(options)}",
                  file=sys.stderr, flush=True)
            sys.exit(2)
