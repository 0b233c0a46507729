"""Config checks that run before anything heavy, and instantiation restricted to known code."""
import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ogan_pl.errors import UserError

#: `_target_`s a model config (possibly read from a downloaded checkpoint) may name.
ALLOWED_TARGET_PREFIXES = ("ogan_pl.", "torch.optim.")
UPDATE_SCHEMES = ("alternating", "joint")


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
    from ogan_pl.distributed import process_rank

    resolvers = {
        # W&B runs offline unless the user opts in with WANDB_MODE=online or logger.wandb.offline=false.
        "wandb_offline": lambda: os.environ.get("WANDB_MODE", "offline") != "online",
        # hydra.run.dir: the launcher's job name, else the start time
        "run_name": lambda stamp: launch_id() or stamp,
        # only rank 0 writes Hydra's .hydra/ folder
        "rank_zero_only": lambda value: value if process_rank() == 0 else None,
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


_register_resolvers()


def _targets(node: Any, path: str = ""):
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "_target_":
                yield path or "<root>", value
            else:
                yield from _targets(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _targets(value, f"{path}[{i}]")


def check_targets(node: Any, name: str = "") -> None:
    for path, target in _targets(node, name):
        if not (isinstance(target, str) and target.startswith(ALLOWED_TARGET_PREFIXES)):
            raise UserError(
                f"refusing to instantiate {target!r} at {path}: only targets under "
                f"{', '.join(ALLOWED_TARGET_PREFIXES)} are allowed in a model config")


def instantiate_or_explain(node: Any, *args, **kwargs) -> Any:
    """hydra.utils.instantiate, re-raising a UserError from the target's constructor as itself,
    so it prints as one line instead of Hydra's multi-line wrapper."""
    try:
        return instantiate(node, *args, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, UserError):
            raise err.__cause__ from None
        raise


def safe_instantiate(node: Any, *args, name: str = "", **kwargs) -> Any:
    """hydra.utils.instantiate, but only of allow-listed targets (configs can come from checkpoints).

    `name` is the node's config key, for the error message.
    """
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    check_targets(node, name)
    return instantiate_or_explain(node, *args, **kwargs)


MATMUL_PRECISIONS = ("highest", "high", "medium")


def configure_torch(cfg: DictConfig) -> None:
    """Process-wide numerics: TF32 for float32 matmuls and convolutions unless 'highest'."""
    precision = cfg.get("float32_matmul_precision", "high")
    if precision not in MATMUL_PRECISIONS:
        raise UserError(f"float32_matmul_precision={precision!r} must be one of {', '.join(MATMUL_PRECISIONS)} "
                        "(highest: strict fp32; high: TF32)")
    import torch

    torch.set_float32_matmul_precision(precision)
    torch.backends.cudnn.allow_tf32 = precision != "highest"


def optimizer_steps_per_iteration(train_cfg: Mapping) -> int:
    """Lightning counts every optimizer step in global_step: n_critic E steps + 1 G step, or 1 joint."""
    return 1 if train_cfg["update"] == "joint" else int(train_cfg["n_critic"]) + 1


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def validate(cfg: DictConfig) -> None:
    """Reject impossible values with one line naming the key and the fix."""
    ds, model, loss, optim, train = cfg.dataset, cfg.model, cfg.loss, cfg.optim, cfg.train
    res = ds.resolution
    _require(isinstance(res, int) and 32 <= res <= 512 and math.log2(res).is_integer(),
             f"dataset.resolution={res} must be a power of two from 32 to 512 (e.g. dataset.resolution=64)")
    _require(ds.channels in (1, 3), f"dataset.channels={ds.channels} must be 1 (grayscale) or 3 (RGB)")
    _require(isinstance(ds.batch_size, int) and ds.batch_size >= 2,
             f"dataset.batch_size={ds.batch_size} must be an integer >= 2 (BatchNorm needs a batch)")
    _require(ds.get("num_workers", 0) >= 0, f"dataset.num_workers={ds.num_workers} must be >= 0")
    # dataset.root is checked by the DataModule, which knows how to get its data (see train.py)

    _require(isinstance(cfg.seed, int) and cfg.seed >= 0, f"seed={cfg.seed} must be an integer >= 0")
    _require(isinstance(train.steps, int) and train.steps >= 1,
             f"train.steps={train.steps} must be a positive number of generator iterations")
    _require(isinstance(train.n_critic, int) and train.n_critic >= 1,
             f"train.n_critic={train.n_critic} must be an integer >= 1")
    _require(train["update"] in UPDATE_SCHEMES,
             f"train.update={train['update']!r} must be one of {', '.join(UPDATE_SCHEMES)}")
    _require(not (train["update"] == "joint" and train.n_critic != 1),
             "train.update=joint makes one update of E and G together; it needs train.n_critic=1")
    max_steps = cfg.trainer.get("max_steps", -1)
    _require(max_steps in (None, -1),
             f"trainer.max_steps={max_steps} counts every optimizer step (E and G); "
             "set the training length in generator iterations with train.steps instead")

    _require(model.z_dim >= 2, f"model.z_dim={model.z_dim} must be >= 2 (rho needs at least two entries)")
    _require(model.kernel_size >= 3, f"model.kernel_size={model.kernel_size} must be >= 3")
    n = int(math.log2(res)) - 3
    width = model.bottom_channels
    _require(width is None or (width >= 2**n and width % 2**n == 0),
             f"model.bottom_channels={width} must be divisible by 2^{n} at resolution {res} "
             "(or null for the reference's 8 * resolution)")
    _require(model.disc_head in ("avg", "linear"),
             f"model.disc_head={model.disc_head!r} must be 'avg' (the paper's) or 'linear'")
    _require(0 <= model.ema_decay < 1, f"model.ema_decay={model.ema_decay} must be in [0, 1) (0 turns EMA off)")
    _require(model.recon_scale > 0, f"model.recon_scale={model.recon_scale} must be > 0")
    _require(model.get("channels_last", False) in ("auto", True, False),
             f"model.channels_last={model.get('channels_last')!r} must be auto, true or false")
    _require(model.get("compile", False) in (True, False), f"model.compile={model.get('compile')!r} must be true or false")

    for key in ("corr_weight", "gp_weight", "r1_gamma"):
        if key in loss:
            _require(loss[key] >= 0, f"loss.{key}={loss[key]} must be >= 0")
    for key in ("lr_e", "lr_g"):
        _require(optim[key] > 0, f"optim.{key}={optim[key]} must be > 0")

    trainer = cfg.trainer
    if trainer.get("sync_batchnorm"):
        _require(trainer.get("accelerator") != "cpu",
                 "trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm has no CPU kernel); "
                 "drop it on CPU")
        _require(loss.get("gp_weight", 0) == 0 and loss.get("r1_gamma", 0) == 0,
                 "trainer.sync_batchnorm=true cannot take the double backward of a gradient penalty "
                 "(loss.gp_weight / loss.r1_gamma); use loss=gan_qp or loss=hinge with it")
    _require(cfg.get("resume", "auto") in ("auto", "never"),
             f"resume={cfg.get('resume')!r} must be auto (continue from the run directory's newest "
             "checkpoint) or never; to start from a given file use ckpt_path=PATH")

    for name, logger in (cfg.get("logger") or {}).items():
        if logger and "TensorBoardLogger" in str(logger.get("_target_", "")):
            try:
                import tensorboard  # noqa: F401
            except ImportError:
                raise UserError("logger=tensorboard needs the tensorboard package: "
                                "pip install tensorboard (or pick logger=wandb/csv/none)") from None


def check_group_choices(argv: list[str], conf_dir: Path) -> None:
    """Unknown config-group options (`loss=foo`) fail with one line listing the valid ones.

    Hydra would print a multi-line error and exit 1; users sweep these, so say it plainly.
    """
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        group_dir = conf_dir / key
        # hydra/launcher, hydra/sweeper: Hydra's plugins add options that are not in conf/
        if "." in key or key.startswith("hydra/") or not group_dir.is_dir() or "(" in value:
            continue
        options = sorted(p.stem for p in group_dir.glob("*.yaml"))
        for choice in value.split(","):
            if choice in ("null", "") or (group_dir / f"{choice}.yaml").is_file():
                continue
            print(f"error: unknown {key} {choice!r}; choose one of: {', '.join(options)}",
                  file=sys.stderr, flush=True)
            sys.exit(2)
