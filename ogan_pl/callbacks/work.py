"""What the callbacks do besides training, timed and stoppable; and the end of a run, in order.

When training ends, the run is over as far as its weights go: `GeneratorStepCheckpoint` writes
last.ckpt first, then `EndOfRun` (always the last callback) runs each callback's end-of-run work
(grids, metrics, then the summary), each timed and logged, each ended at once by a stop signal
(ogan_pl.utils.stopping), and each free to skip itself when it would cost more than the run it closes.
"""

import contextlib
import logging
import time

import pytorch_lightning as pl
import torch

from ogan_pl.utils.stopping import StopRequested, active, interruptible

log = logging.getLogger(__name__)


class TimedWork(pl.Callback):
    """A callback whose work is timed (`seconds`, `calls`) and, unless `stoppable` is false, ended at
    once by a stop signal. `end_of_run` is its share of the work done when training ends."""

    #: what its work is called in log lines and in the `time/` scalars
    label = "callback"
    #: the order of the end-of-run work: data-producing work first, then what reads it (the summary)
    end_order = 0

    seconds = 0.0
    calls = 0
    #: the config key it was built from (callbacks.<key>), set by train.py; used in messages
    key: str | None = None
    _fit_start = 0.0

    def on_fit_start(self, trainer, pl_module) -> None:
        self._fit_start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        """In a Trainer of the user's own, without `EndOfRun`, the end-of-run work runs here."""
        if not any(isinstance(cb, EndOfRun) for cb in trainer.callbacks):
            self.end_of_run(trainer, pl_module, time.perf_counter() - self._fit_start)

    @contextlib.contextmanager
    def working(self, stoppable: bool = True):
        start = time.perf_counter()
        try:
            with interruptible(self.label) if stoppable else contextlib.nullcontext():
                yield
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1

    def end_of_run(self, trainer, pl_module, train_seconds: float) -> str | None:
        """The work done once when training ends (`train_seconds`: this process's training time).
        Returns why it was skipped, or None."""
        return None

    @property
    def option(self) -> str:
        return f"callbacks.{self.key}" if self.key else f"the {type(self).__name__} callback's"


class EndOfRun(pl.Callback):
    """Always the last callback. Marks the training loop for the stop signals, runs the end-of-run work
    of every `TimedWork` callback after last.ckpt is written, logs each one's time, and re-writes
    last.ckpt when that work changed a callback's checkpointed state (a best-metric record)."""

    def __init__(self):
        self._start = time.perf_counter()

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()
        if (signals := active()) is not None:
            signals.phase = "training"

    def on_train_end(self, trainer, pl_module) -> None:
        train_seconds = time.perf_counter() - self._start
        signals = active()
        if signals is not None:
            signals.phase = "the end of the run"
        works = sorted(
            (
                cb
                for cb in trainer.callbacks
                if isinstance(cb, TimedWork) and type(cb).end_of_run is not TimedWork.end_of_run
            ),
            key=lambda cb: cb.end_order,
        )
        states = {id(cb): _state(cb) for cb in works}
        for i, work in enumerate(works):
            try:
                if signals is not None:
                    signals.check(work.label)
                start = time.perf_counter()
                skipped = work.end_of_run(trainer, pl_module, train_seconds)  # its work is `working()` sections
                if trainer.is_global_zero:
                    if skipped:
                        log.info("end of run: %s skipped: %s", work.label, skipped)
                    else:
                        log.info("end of run: %s took %.1f s", work.label, time.perf_counter() - start)
            except StopRequested as stop:
                stop.during = f"the end-of-run {stop.during}"
                stop.skipped = [w.label for w in works[i:]]
                raise
        if any(_state(cb) != states[id(cb)] for cb in works):
            for cb in trainer.callbacks:
                if hasattr(cb, "save_last"):
                    cb.save_last(trainer, pl_module, force=True)
        self.report(trainer, pl_module)

    @staticmethod
    def report(trainer, pl_module) -> None:
        """One line with each callback's total time over the run, also logged as `time/<label>_s`."""
        timed = [cb for cb in trainer.callbacks if isinstance(cb, TimedWork) and cb.calls]
        if not trainer.is_global_zero or not timed:
            return
        log.info("callback time: %s", ", ".join(f"{w.label} {w.seconds:.1f} s ({w.calls}x)" for w in timed))
        scalars = {f"time/{w.label.replace(' ', '_')}_s": w.seconds for w in timed}
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=pl_module.g_iter)


def _state(callback) -> object:
    state = callback.state_dict()
    return {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in state.items()} if state else state
