"""A composed training config checked once, before anything heavy runs: ogan_pl's own sections by
their schema, every part by its registry (name, arguments, types: the model's Recipe), the trainer
by Lightning's signature, then what ties values together. Cheap: builds no network, reads no data."""

import importlib.util

from omegaconf import DictConfig

from ogan_pl.config.recipe import Recipe
from ogan_pl.config.schema import TrainConfig, check_sections, check_trainer
from ogan_pl.registry.registries import ARCHITECTURES, AUGMENTS, DATASETS, LOSSES
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.nested import plain_config


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def check_training(cfg: DictConfig, schema=None) -> Recipe:
    """The model's checked Recipe, or one line naming the key and the fix: ogan_pl's own sections and
    unknown keys by their schema (ogan_pl.config.schema), each part's arguments by its signature and
    its own checks (see check_parts), the trainer by Lightning's signature; then what ties values
    together. `schema`: the model of the whole config (TrainConfig, or one that extends it)."""
    check_sections(plain_config(cfg), schema or TrainConfig)
    checked = check_parts(cfg)
    check_trainer(plain_config(cfg.trainer))
    _require(
        not (cfg.train["update"] == "joint" and cfg.train.n_critic != 1),
        "train.update=joint makes one update of E and G together; it needs train.n_critic=1",
    )
    # the dataset's values are checked by its DataModule's signature (check_parts); dataset.root when
    # the data is read, by the DataModule, which knows how to get its data
    max_steps = cfg.trainer.get("max_steps", -1)
    _require(
        max_steps in (None, -1),
        f"trainer.max_steps={max_steps} counts every optimizer step (E and G); "
        "set the training length in generator iterations with train.steps instead",
    )

    trainer = cfg.trainer
    if trainer.get("sync_batchnorm"):
        _require(
            trainer.get("accelerator") != "cpu",
            "trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm has no CPU kernel); drop it on CPU",
        )
        _require(
            not getattr(LOSSES.build(checked.parts["loss"], "loss"), "requires_real_grad", False)
            and cfg.loss.get("gp_weight", 0) == 0,
            "trainer.sync_batchnorm=true cannot take the double backward of a gradient penalty "
            "(loss.gp_weight / loss.r1_gamma); use loss=gan_qp or loss=hinge with it",
        )

    for logger in (cfg.get("logger") or {}).values():
        tensorboard = logger and "TensorBoardLogger" in str(logger.get("_target_", ""))
        if tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise UserError(
                "logger=tensorboard needs the tensorboard package: "
                "pip install tensorboard (or pick logger=wandb/csv/none)"
            )
    return checked


def check_parts(cfg: DictConfig) -> Recipe:
    """Every part the config names (registered name, known arguments, plain values), and the
    architecture, loss, augmentation and dataset's own checks of their arguments (their constructors:
    cheap, no network built, no data read)."""
    checked = Recipe.of_run(plain_config(cfg))
    ARCHITECTURES.build(checked.parts["model"], "model")
    LOSSES.build(checked.parts["loss"], "loss")
    if "augment" in checked.parts:
        AUGMENTS.build(checked.parts["augment"], "augment")
    if "dataset" in checked.parts:
        DATASETS.build(checked.parts["dataset"], "dataset")
    return checked
