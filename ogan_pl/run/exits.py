"""How an entry point ends on an error: one line on stderr and exit code 2, never a traceback.

In a Hydra multirun a failing job must not end the sweep: the job's error (a UserError, or any
other exception, whose traceback then goes to the job's log) is printed as one line, recorded in
the job's result.json with status "failed", and the next job runs. The sweep summary
(ogan_pl.run.sweeps.SweepSummary) lists it and makes the sweep exit non-zero at the end.
"""

import functools
import logging
import shutil
import signal
import sys
from pathlib import Path
from typing import NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig
from omegaconf.errors import OmegaConfBaseException

from ogan_pl.run.sweeps import write_result
from ogan_pl.utils.errors import UserError

log = logging.getLogger(__name__)


def exit_with(err: UserError | str, code: int = 2) -> NoReturn:
    """The one way a user's mistake ends a command: `error: ...` on one line, exit code 2."""
    print(f"error: {one_line(err) if isinstance(err, BaseException) else err}", file=sys.stderr, flush=True)
    sys.exit(code)


def exit_stopped(stop: BaseException | None) -> NoReturn:
    """The one way a stop signal ends a command that was not training: one line (what was stopped, and
    what became of its outputs, from the exception's notes), exit code 128 + the signal's number."""
    signum = getattr(stop, "signum", None) or signal.SIGINT
    where = f" during {stop.during}" if getattr(stop, "during", None) else ""
    notes = "; ".join(getattr(stop, "__notes__", ())) or "its results were not written"
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    print(f"stopped by {name}{where}; {notes}", file=sys.stderr, flush=True)
    sys.exit(128 + int(signum))


class FailedJob:
    """What a failed multirun job returns to the sweeper. Optuna's sweeper calls float() on a
    trial's value: this raises, so the trial is told FAILED and the study goes on."""

    def __init__(self, error: str):
        self.error = error

    def __float__(self) -> float:
        raise ValueError(self.error)

    def __repr__(self) -> str:
        return f"failed job: {self.error}"


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if isinstance(err, UserError) else f"{type(err).__name__}: {text}"


def _multirun_job() -> tuple[str, str] | None:
    """(job number, output dir) when running as one job of a Hydra multirun, else None."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    hc = HydraConfig.get()
    return str(hc.job.get("num", "?")), hc.runtime.output_dir


def missing_values(cfg: DictConfig | ListConfig, prefix: str = "") -> list[str]:
    """The dotted keys still `???` (required values nobody gave), found without resolving anything."""
    keys = cfg.keys() if isinstance(cfg, DictConfig) else range(len(cfg))
    found = []
    for key in keys:
        node = cfg._get_node(key)
        if node._is_missing():
            found.append(f"{prefix}{key}")
        elif isinstance(node, (DictConfig, ListConfig)) and not (node._is_none() or node._is_interpolation()):
            found += missing_values(node, f"{prefix}{key}.")
    return found


def missing_error(keys: list[str]) -> UserError:
    verb = "has" if len(keys) == 1 else "have"
    return UserError(f"{', '.join(keys)} {verb} no value: add {' '.join(k + '=...' for k in keys)} to the command line")


def report_user_errors(fn):
    """Wrap an entry point: a required value left out, or a UserError, ends it through `exit_with`.
    Inside a multirun every failure of the job is recorded instead (see the module docstring)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        job = _multirun_job()
        try:
            if args and isinstance(args[0], DictConfig) and (missing := missing_values(args[0])):
                raise missing_error(missing)
            try:
                return fn(*args, **kwargs)
            except OmegaConfBaseException as err:  # a resolver's UserError, wrapped by OmegaConf
                cause = err
                while isinstance(cause, OmegaConfBaseException):
                    cause = cause.__cause__ or cause.__context__
                if isinstance(cause, UserError):
                    raise cause from None
                raise
        except UserError as err:
            if job is None:
                _discard_fresh_run_dir()
                exit_with(err)
            return _record_failure(job, err)
        except Exception as err:
            if job is None:
                raise
            log.exception("job %s failed", job[0])  # the traceback, in the job's log file
            return _record_failure(job, err)

    return wrapper


def _discard_fresh_run_dir() -> None:
    """A refused command writes nothing: the run directory Hydra made for it (holding only its log
    file) goes, with the folders above it that are left empty, up to the current folder."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.RUN:
        return
    run_dir = Path(HydraConfig.get().runtime.output_dir).resolve()
    cwd = Path.cwd().resolve()
    if run_dir == cwd or cwd not in run_dir.parents or not run_dir.is_dir():
        return
    if any(not (entry.is_file() and entry.suffix == ".log") for entry in run_dir.iterdir()):
        return  # it holds a run's work (resuming a run in its own directory): never touched
    for handler in logging.getLogger().handlers[:]:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == run_dir:
            logging.getLogger().removeHandler(handler)
            handler.close()
    shutil.rmtree(run_dir, ignore_errors=True)
    for folder in run_dir.parents:
        if folder == cwd or any(folder.iterdir()):
            break
        folder.rmdir()


def _record_failure(job: tuple[str, str], err: Exception) -> FailedJob:
    num, out_dir = job
    message = one_line(err)
    print(f"error: {message}  [job {num}]", file=sys.stderr, flush=True)
    write_result(out_dir, {"error": message, "user_error": isinstance(err, UserError)}, status="failed")
    return FailedJob(message)
