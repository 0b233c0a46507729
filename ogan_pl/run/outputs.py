"""A tool's outputs appear whole or not at all, and one folder is written by one run at a time.

`staged_output(path)` hands the tool a fresh folder beside `path` to write into; when the tool's
work is done, a manifest (`MANIFEST`, naming the tool and every file) is added and the folder
replaces `path` by renames, so an interruption or a crash leaves `path` as it was (the previous
complete result, or nothing; a run killed outright leaves its hidden folder, which the next run
into `path` removes). While it runs, `path/.lock` (the run directory's lock) makes a
second run into the same folder refuse with one line. A non-empty `path` is replaced only with
`overwrite=true`, and only if an earlier run of a tool wrote it (its manifest says so): a folder of
the user's own files is never replaced.
"""
import contextlib
import glob
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ogan_pl.run.rundir import LOCK_FILE, RunDirectoryLock
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import atomic_write, now_iso

MANIFEST = "manifest.json"


def _contents(path: Path) -> list[Path]:
    return [p for p in path.iterdir() if p.name != LOCK_FILE] if path.is_dir() else []


def check_writable(path: Path, key: str = "output") -> None:
    """Refuse, before any work, a path under a file or in a folder this process cannot write."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    folder = existing if existing != path or path.is_dir() else path.parent
    if not folder.is_dir():
        raise UserError(f"{key}={path}: cannot write there ({folder} is a file, not a folder)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{key}={path}: cannot write there ({folder} is not writable)")


def check_output(path: Path, tool: str, key: str = "output", overwrite: bool = False) -> None:
    """Refuse, before any work, an output folder that this run may not write."""
    check_writable(path, key)
    if path.exists() and not path.is_dir():
        raise UserError(f"{key}={path} is a file; give a folder (a new one, or one that {tool} wrote)")
    if not _contents(path):
        return
    if not (path / MANIFEST).is_file():
        raise UserError(f"{key}={path} is not empty and not written by an ogan_pl tool; give a new or empty "
                        "folder (it is never replaced)")
    if not overwrite:
        raise UserError(f"{key}={path} holds an earlier result; give a new folder, or overwrite=true to replace "
                        "it whole")


@contextlib.contextmanager
def staged_output(path: str | Path, tool: str, key: str = "output", overwrite: bool = False) -> Iterator[Path]:
    """`with staged_output(cfg.output, "ogan-invert", overwrite=cfg.overwrite) as out:` write into `out`."""
    path = Path(path)
    check_output(path, tool, key, overwrite)
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{key}={path}: cannot write there ({err.strerror})") from None
    staging = path.parent / f".{path.name}.partial-{os.getpid()}"
    old = path.parent / f".{path.name}.old-{os.getpid()}"
    try:
        with RunDirectoryLock(path, what=key, owner=f"another run of {tool}",
                              hint=f"wait for it to end, or give another {key}="):
            check_output(path, tool, key, overwrite)  # again, now that no other run can write there
            for stale in path.parent.glob(f".{glob.escape(path.name)}.partial-*"):  # of runs killed outright
                shutil.rmtree(stale, ignore_errors=True)
            staging.mkdir()
            yield staging
            files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
            atomic_write(staging / MANIFEST, lambda f: f.write(json.dumps(
                {"tool": tool, "time": now_iso(), "files": files}, indent=1).encode("utf-8", "surrogateescape")))
            os.rename(path, old)  # the lock's file goes with it: held until the move is done
            os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created and path.is_dir() and not _contents(path):
            shutil.rmtree(path, ignore_errors=True)  # a refused or failed first run leaves nothing
        raise
    finally:
        if old.exists():
            if path.exists():
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(old, path)  # the new result did not move in: the previous one stays
