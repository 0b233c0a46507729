"""Preemption: stop at a step boundary on SIGTERM, SIGUSR1 or SIGUSR2, save, and requeue on SLURM.

Lightning already turns SIGTERM into a clean stop: its handler sets a flag, rank 0's flag is
broadcast at the next step, and every rank raises SIGTERMException between two steps, where
`GeneratorStepCheckpoint.on_exception` saves last.ckpt. `PreemptionSignals` routes SIGUSR1 and
SIGUSR2 (SLURM's "time is nearly up" warning: `--signal=USR1@120` in sbatch scripts, USR2 under
submitit) into that same path and remembers it, so that after the save the job requeues itself:
through submitit's own handler when submitit launched it (it resubmits the same Hydra job), else
with `scontrol requeue` on rank 0. The requeued job finds last.ckpt in the same run directory
(resume=auto). A plain SIGTERM (scancel, or preemption, which SLURM requeues itself) only saves.
"""
import logging
import os
import signal
import subprocess

from ogan_pl.distributed import process_rank

log = logging.getLogger(__name__)


class PreemptionSignals:
    """Context manager around trainer.fit. `received` is the first stop signal seen, if any."""

    #: the signals that mean "save, then requeue"
    REQUEUE_SIGNALS = tuple(getattr(signal, name) for name in ("SIGUSR1", "SIGUSR2") if hasattr(signal, name))

    def __init__(self, requeue: bool = True):
        self.requeue_allowed = requeue
        self.received: signal.Signals | None = None
        self._previous = {}

    def __enter__(self) -> "PreemptionSignals":
        for signum in self.REQUEUE_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_requeue_signal)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def _on_requeue_signal(self, signum, frame) -> None:
        self.received = self.received or signal.Signals(signum)
        # Lightning's SIGTERM handler (installed during fit) sets the stop flag and forwards the
        # signal to the ranks it started; it is looked up now, not at __enter__.
        handler = signal.getsignal(signal.SIGTERM)
        if callable(handler):
            handler(signum, frame)

    def note_sigterm(self) -> None:
        self.received = self.received or signal.SIGTERM

    @property
    def requeue_requested(self) -> bool:
        """A requeue signal arrived, requeueing is on, and this is a SLURM job."""
        return (self.requeue_allowed and self.received in self.REQUEUE_SIGNALS
                and (callable(self._previous.get(self.received)) or "SLURM_JOB_ID" in os.environ))

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
            done = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True)
        except FileNotFoundError:
            log.warning("cannot requeue SLURM job %s: scontrol is not on PATH", job_id)
            return False
        if done.returncode != 0:
            log.warning("scontrol requeue %s failed: %s", job_id, done.stderr.strip())
            return False
        log.info("requeued SLURM job %s", job_id)
        return True
