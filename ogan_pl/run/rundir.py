"""A run directory belongs to one training at a time, and nothing is written into it before the
run is known to fit there.

`RunDirectoryLock` holds `.lock` in the run directory for the whole training (rank 0 only; the
ranks of one job share the directory). The lock is a kernel file lock, so a training that died
(killed, crashed, its machine rebooted) leaves no lock behind; the file also names the holder
(pid, host, start time) for the message a second training gets. Where the filesystem has no file
locks, the file itself is the lock and a holder on this host whose process is gone is stale.

`save_run_config` writes `.hydra/` (Hydra's own record of the job, which conf/hydra/default.yaml
turns off so that it is not written before these checks) and `config.yaml`.
"""

import datetime
import errno
import fcntl
import json
import os
import socket
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import pid_alive

LOCK_FILE = ".lock"


class RunDirectoryLock:
    """`with RunDirectoryLock(out_dir):` the directory is this training's; a second one refuses."""

    def __init__(
        self,
        run_dir: str | Path,
        what: str = "run directory",
        owner: str = "another training",
        hint: str = "wait for it to end, or train in another directory (hydra.run.dir=DIR)",
    ):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.what, self.owner, self.hint = what, owner, hint
        self._fd: int | None = None

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def _refuse(self, holder: dict) -> None:
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('started', '?')}"
        raise UserError(f"{self.what} {self.run_dir} is in use by {self.owner} ({who}); {self.hint}")

    def __enter__(self) -> "RunDirectoryLock":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self._refuse(self._holder())
        except OSError as err:
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                raise
            holder = self._holder()  # no file locks here: the recorded holder decides
            stale = holder.get("host") == socket.gethostname() and not pid_alive(int(holder.get("pid", 0)))
            if holder.get("pid") and holder.get("pid") != os.getpid() and not stale:
                os.close(fd)
                self._refuse(holder)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # released: no holder to name
            os.close(self._fd)  # closing releases the kernel lock
            self._fd = None


def save_run_config(cfg: DictConfig, run_dir: str | Path) -> None:
    """config.yaml (resolved: what this run trained with) and Hydra's .hydra/ record of the job."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    record = run_dir / ".hydra"
    record.mkdir(exist_ok=True)
    OmegaConf.save(cfg, record / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), record / "hydra.yaml")
    OmegaConf.save(hydra_cfg.overrides.task, record / "overrides.yaml")


def first_difference(stored, current, prefix: str) -> str | None:
    """The first key (dotted) whose value differs between two plain configs, with both values."""
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in sorted(set(stored) | set(current), key=str):
            found = first_difference(stored.get(key), current.get(key), f"{prefix}.{key}")
            if found:
                return found
        return None
    return None if stored == current else f"{prefix}={stored!r} there, {current!r} here"
