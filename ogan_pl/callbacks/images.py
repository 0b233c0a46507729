"""Sample / reconstruction / interpolation grids during training, saved as PNG and logged."""

import logging
import time
from pathlib import Path

from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

from ogan_pl.callbacks.work import TimedWork
from ogan_pl.grids import GridInputs, InterpSteps, make_grids, save_grids
from ogan_pl.registry.values import NonNegativeInt, PositiveInt, checked_arguments

log = logging.getLogger(__name__)


@checked_arguments("callbacks.images")
class ImageGrids(TimedWork):
    """Every `every_n_steps` generator iterations and at the end of training, from the EMA weights."""

    label = "grids"

    def __init__(
        self,
        dirpath: str,
        every_n_steps: PositiveInt = 500,
        n_samples: PositiveInt = 64,
        n_recon: PositiveInt = 32,
        interp_rows: PositiveInt = 4,
        interp_steps: InterpSteps = 8,
        seed: NonNegativeInt = 0,
        use_ema: bool = True,
    ):
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.grid_kwargs = {
            "n_samples": n_samples,
            "n_recon": n_recon,
            "interp_rows": interp_rows,
            "interp_steps": interp_steps,
            "seed": seed,
        }
        self.use_ema = use_ema
        self.inputs: GridInputs | None = None
        self._last_written = -1

    def on_train_start(self, trainer, pl_module) -> None:
        holdout = trainer.datamodule.holdout_batch(self.grid_kwargs["n_recon"] + 2 * self.grid_kwargs["interp_rows"])
        self.inputs = GridInputs.create(pl_module.z_dim, holdout["image"], **self.grid_kwargs)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.g_iter % self.every_n_steps == 0:
            self.write(trainer, pl_module)

    def end_of_run(self, trainer, pl_module, train_seconds: float) -> str | None:
        self.write(trainer, pl_module)
        return None

    def write(self, trainer, pl_module) -> None:
        step = pl_module.g_iter
        if not trainer.is_global_zero or self.inputs is None or step == self._last_written:
            return
        self._last_written = step
        start = time.perf_counter()
        with self.working():
            grids = make_grids(pl_module, self.inputs, self.use_ema)
            paths = save_grids(grids, self.dirpath, suffix=f"_{step:07d}")
        log.info("grids at generator iteration %d: %s (%.1f s)", step, self.dirpath, time.perf_counter() - start)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for name, path in paths.items():
                    logger.log_image(key=f"images/{name}", images=[str(path)], step=step)
            elif isinstance(logger, TensorBoardLogger):
                for name, grid in grids.items():
                    logger.experiment.add_image(f"images/{name}", grid, global_step=step)
