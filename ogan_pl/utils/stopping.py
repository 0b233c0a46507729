"""Stopping a run when asked: SIGTERM (a scheduler's time limit, `timeout`, scancel), Ctrl-C (SIGINT),
and SLURM's "time is nearly up" warnings (SIGUSR1, SIGUSR2: save, then requeue).

Two modes, by where the run is:
- In the training loop a stop is taken at the next step boundary, so the saved state is consistent:
  the signal sets Lightning's flag (its SIGTERM handler, which also forwards the signal to the ranks
  it started), every rank raises SIGTERMException between two steps, and
  `GeneratorStepCheckpoint.on_exception` saves last.ckpt there. A requeue signal then requeues the
  job: through submitit's own handler when submitit launched it, else `scontrol requeue` on rank 0.
- Everywhere else (set-up and data building, a classifier's training, the metrics, grids and
  summary of the training callbacks, the end-of-run work) a stop ends the work at once: the signal
  raises `StopRequested` where the program is. Callback work inside the training loop marks itself
  with `interruptible(what)`; a checkpoint write marks itself with `deferred()` and is never cut.

A second Ctrl-C exits at once (code 130) on rank 0.
"""

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading

from pytorch_lightning.utilities.exceptions import SIGTERMException

from ogan_pl.utils.distributed import process_rank

log = logging.getLogger(__name__)

#: the signals that mean "save, then requeue"
REQUEUE_SIGNALS = tuple(getattr(signal, name) for name in ("SIGUSR1", "SIGUSR2") if hasattr(signal, name))
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, *REQUEUE_SIGNALS)


class StopRequested(SIGTERMException):
    """A stop signal ended the work named `during` at once (SIGTERMException, so Lightning's
    interrupt path and the checkpoint callback treat it as the step-boundary stop)."""

    def __init__(self, signum: signal.Signals, during: str):
        super().__init__(128 + int(signum))
        self.signum = signum
        self.during = during
        self.skipped: list[str] = []  # end-of-run work not done (set by the end-of-run driver)


class StopSignals:
    """Context manager around a training run; `received` is the first stop signal, if any.

    The process has one active instance (`active()`), which `interruptible` and `deferred` consult;
    without one (evaluate.py, tests calling callbacks directly) both do nothing.
    """

    def __init__(self, requeue: bool = True):
        self.requeue_allowed = requeue
        self.received: signal.Signals | None = None
        self.phase = "set-up"  # then "training" (stops wait for a step boundary), then "the end of the run"
        self._sections: list[str] = []
        self._deferring = 0
        self._forwarding = False
        self._previous: dict = {}

    # -- installing ------------------------------------------------------------------------------
    def __enter__(self) -> "StopSignals":
        global _ACTIVE
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        _ACTIVE = self
        return self

    def __exit__(self, *exc) -> None:
        global _ACTIVE
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _ACTIVE = None

    # -- the handler -----------------------------------------------------------------------------
    def _handle(self, signum, frame) -> None:
        if self._forwarding:  # Lightning's SIGTERM handler, called below, calls this one back
            return
        signum = signal.Signals(signum)
        if self.received is not None:
            if signum == signal.SIGINT and process_rank() == 0:
                print("second Ctrl-C: exiting at once", file=sys.stderr, flush=True)
                os._exit(130)
            return  # ranks > 0 see a Ctrl-C twice (the terminal's and the one rank 0 forwards)
        self.received = signum
        if signum != signal.SIGTERM:  # Lightning's SIGTERM handler sets its stop flag and forwards it
            handler = signal.getsignal(signal.SIGTERM)
            if callable(handler) and handler != self._handle:
                self._forwarding = True
                try:
                    handler(signum, frame)
                finally:
                    self._forwarding = False
        if self._deferring == 0 and (self._sections or self.phase != "training"):
            raise StopRequested(signum, self._sections[-1] if self._sections else self.phase)
        if signum == signal.SIGINT and process_rank() == 0:
            what = "this checkpoint write" if self._deferring else "this training step, saving last.ckpt"
            print(f"Ctrl-C: stopping after {what} (Ctrl-C again exits at once)", file=sys.stderr, flush=True)

    def check(self, during: str) -> None:
        """Raise StopRequested if a stop signal has arrived (a point between two pieces of work)."""
        if self.received is not None:
            raise StopRequested(self.received, during)

    # -- requeueing after the save ---------------------------------------------------------------
    @property
    def requeue_requested(self) -> bool:
        """A requeue signal arrived, requeueing is on, and this is a SLURM job."""
        return (
            self.requeue_allowed
            and self.received in REQUEUE_SIGNALS
            and (callable(self._previous.get(self.received)) or "SLURM_JOB_ID" in os.environ)
        )

    def requeue(self) -> bool:
        """Requeue this SLURM job after the save: through submitit's handler when it launched the job
        (it exits the process), else `scontrol requeue` on rank 0. True if the job was requeued."""
        if not self.requeue_requested:
            return False
        previous = self._previous.get(self.received)
        if callable(previous):  # submitit's: resubmits the job (rank 0), then exits the process
            previous(self.received, None)
            return True
        job_id = os.environ.get("SLURM_JOB_ID")
        if job_id is None or process_rank() != 0:
            return False
        if "SLURM_ARRAY_JOB_ID" in os.environ:
            job_id = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        try:
            done = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, check=False)
        except FileNotFoundError:
            log.warning("cannot requeue SLURM job %s: scontrol is not on PATH", job_id)
            return False
        if done.returncode != 0:
            log.warning("scontrol requeue %s failed: %s", job_id, done.stderr.strip())
            return False
        log.info("requeued SLURM job %s", job_id)
        return True


_ACTIVE: StopSignals | None = None


def active() -> StopSignals | None:
    return _ACTIVE


@contextlib.contextmanager
def interruptible(what: str):
    """A piece of work (metrics, grids, a classifier's training) that a stop signal ends at once,
    also inside the training loop; it is not started at all when a stop has already arrived."""
    signals = _ACTIVE
    if signals is None:
        yield
        return
    signals.check(what)
    signals._sections.append(what)
    try:
        yield
    finally:
        signals._sections.pop()


@contextlib.contextmanager
def deferred():
    """A piece of work a stop signal never cuts (a checkpoint write): the stop waits for its end."""
    signals = _ACTIVE
    if signals is None:
        yield
        return
    signals._deferring += 1
    try:
        yield
    finally:
        signals._deferring -= 1
