"""Checkpoints on generator iterations (written atomically by ogan_pl.checkpoints.AtomicCheckpointIO)."""

import contextlib
from pathlib import Path

from pytorch_lightning.utilities.exceptions import SIGTERMException

from ogan_pl.callbacks.work import TimedWork
from ogan_pl.registry.values import PositiveInt, checked_arguments
from ogan_pl.utils.errors import TrainingDiverged
from ogan_pl.utils.stopping import deferred


@checked_arguments("callbacks.checkpoint")
class GeneratorStepCheckpoint(TimedWork):
    """`giter_NNNNNNN.ckpt` (7-digit iteration) every `every_n_steps` generator iterations, and
    `last.ckpt` with each save, as soon as training ends (before any end-of-run work, which a stop
    signal may cut), and when a stop signal ends the run (ogan_pl.utils.stopping: at a step boundary, or
    during callback work after a step, so the state is consistent). A checkpoint holds G, E, their
    EMA copies, the optimizer states, the resolved config and the generator-iteration counter. A
    write is never cut by a stop signal. A model whose losses went NaN or infinite is never saved:
    the run stops instead (OGAN.raise_if_diverged)."""

    label = "checkpoints"

    def __init__(self, dirpath: str, every_n_steps: PositiveInt = 1000, save_last: bool = True):
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.save_last_enabled = save_last
        self._last_saved = -1
        self.start_g_iter: int | None = None  # the counter when training began in this process

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def trained(self, pl_module) -> bool:
        """Whether a step ended in this process: only then has a stop anything new to save."""
        return self.start_g_iter is not None and pl_module.g_iter != self.start_g_iter

    def on_train_start(self, trainer, pl_module) -> None:
        self.start_g_iter = pl_module.g_iter

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.g_iter % self.every_n_steps == 0:
            pl_module.raise_if_diverged()
            with self.working(stoppable=False), deferred():
                trainer.save_checkpoint(self.dirpath / f"giter_{pl_module.g_iter:07d}.ckpt", weights_only=False)
            self.save_last(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save_last(trainer, pl_module)

    def on_exception(self, trainer, pl_module, exception) -> None:
        # stopped (every rank is here, at the same step); a stop during set-up has nothing new to save
        if isinstance(exception, SIGTERMException) and self.trained(pl_module):
            with contextlib.suppress(TrainingDiverged):  # nothing finite to add: the last checkpoint stays
                self.save_last(trainer, pl_module)

    def save_last(self, trainer, pl_module, force: bool = False) -> None:
        """last.ckpt, unless it already holds this generator iteration (`force`: it does, but a
        callback's checkpointed state changed since, e.g. by the end-of-run metrics)."""
        if self.save_last_enabled and (force or pl_module.g_iter != self._last_saved):
            pl_module.raise_if_diverged()
            with self.working(stoppable=False), deferred():
                trainer.save_checkpoint(self.last_path, weights_only=False)
            self._last_saved = pl_module.g_iter
