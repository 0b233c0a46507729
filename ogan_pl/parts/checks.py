"""A composed config checked before anything heavy runs: ogan_pl's own sections by their schema,
every part by its registry (name, arguments, types) and its own checks, the trainer by Lightning's
signature, then what ties values together. Cheap: builds no network, reads no data."""
import importlib.util

from omegaconf import DictConfig

from ogan_pl.parts.plugins import load_plugins
from ogan_pl.parts.recipe import check_recipe, recipe
from ogan_pl.parts.registry import ARCHITECTURES, AUGMENTS, DATASETS, LOSSES
from ogan_pl.parts.schema import TrainConfig, check_sections, check_trainer
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.nested import plain_config


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def validate(cfg: DictConfig, schema=None) -> None:
    """Reject impossible values with one line naming the key and the fix: ogan_pl's own sections and
    unknown keys by their schema (ogan_pl.parts.schema), each part's arguments by its signature and its own
    checks (see check_parts), the trainer by Lightning's signature; then what ties values together.
    `schema`: the model of the whole config (ogan_pl.parts.schema.TrainConfig, or one that extends it)."""
    check_sections(plain_config(cfg), schema or TrainConfig)
    check_parts(cfg)
    check_trainer(plain_config(cfg.trainer))
    _require(not (cfg.train["update"] == "joint" and cfg.train.n_critic != 1),
             "train.update=joint makes one update of E and G together; it needs train.n_critic=1")
    # the dataset's values are checked by its DataModule's signature (check_parts); dataset.root when
    # the data is read, by the DataModule, which knows how to get its data
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
            if importlib.util.find_spec("tensorboard") is None:
                raise UserError("logger=tensorboard needs the tensorboard package: "
                                "pip install tensorboard (or pick logger=wandb/csv/none)")


def check_parts(cfg: DictConfig) -> None:
    """Import the user's plugins, then check every part the config names (registered name, known
    arguments, plain values) and let the architecture and loss check their own arguments. Cheap:
    builds no network, reads no data."""
    load_plugins(cfg.get("plugins") or [])
    parts = check_recipe(recipe(plain_config(cfg)))
    ARCHITECTURES.build(parts["model"], "model")
    LOSSES.build(parts["loss"], "loss")
    if "augment" in parts:
        AUGMENTS.build(parts["augment"], "augment")
    if "dataset" in parts:  # a DataModule's constructor checks its values; it reads no data
        DATASETS.build(parts["dataset"], "dataset")


def build_loss(cfg: DictConfig):
    return LOSSES.build(plain_config(cfg.loss), "loss")
