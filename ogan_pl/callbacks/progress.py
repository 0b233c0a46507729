"""A Rich progress bar over generator iterations, showing kimg and images/s.

It reads only host-side counters of the module, never logged tensors, so it adds no device sync
(Lightning's RichProgressBar fetches the logged metrics every batch).
"""

import sys

from pytorch_lightning.callbacks.progress import ProgressBar
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class GeneratorProgressBar(ProgressBar):
    def __init__(self, refresh_every: int = 1, plain_every: int = 100):
        """Without a terminal (batch jobs, CI) it prints one plain line every `plain_every` iterations."""
        super().__init__()
        self.refresh_every = max(1, refresh_every)
        self.plain_every = max(1, plain_every)
        self._total: int | None = None
        self._enabled = True
        self._progress: Progress | None = None
        self._task = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer, pl_module) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        total = trainer.max_steps // pl_module.optimizer_steps_per_iteration if trainer.max_steps > 0 else None
        self._total = total
        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("G iters"),
            TextColumn("{task.fields[kimg]:.1f} kimg"),
            TextColumn("{task.fields[speed]:.0f} img/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=not sys.stderr.isatty(),
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=total, completed=pl_module.g_iter, kimg=pl_module.kimg, speed=0.0
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._progress is not None and self._progress.disable and pl_module.g_iter % self.plain_every == 0:
            print(
                f"G iter {pl_module.g_iter}/{self._total}  {pl_module.kimg:.1f} kimg  "
                f"{pl_module.images_per_sec:.0f} img/s",
                file=sys.stderr,
                flush=True,
            )
        if self._progress is not None and pl_module.g_iter % self.refresh_every == 0:
            self._progress.update(
                self._task, completed=pl_module.g_iter, kimg=pl_module.kimg, speed=pl_module.images_per_sec
            )

    def on_train_end(self, trainer, pl_module) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task, completed=pl_module.g_iter, kimg=pl_module.kimg, speed=pl_module.images_per_sec
            )
            self._progress.stop()
            self._progress = None
