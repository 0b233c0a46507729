"""A tool's outputs appear whole or not at all, and one folder is written by one run at a time.

`staged_output(path)` hands the tool a hidden folder beside `path` (`.NAME.partial-PID`) to write
into; when the tool's work is done, a manifest (`manifest.json`, naming the tool and every file) is
added and the folder replaces `path` by renames, so an interruption or a crash leaves `path` as it
was: the previous complete result, or nothing. While it runs, `path/.lock` (the run directory's
lock) makes a second run into the same folder refuse with one line. A non-empty `path` is replaced
only with `overwrite=true`, and only if an earlier run of a tool wrote it (its manifest says so): a
folder of the user's own files is never replaced. A refused or failed run leaves nothing behind.

Tools that work image by image (ogan-invert, ogan-export-images) also take `resume`: a stop signal
(Ctrl-C, SIGTERM) then keeps the hidden folder with the images finished so far, as does a run killed
outright, and `resume=true` continues in it, or, when there is none, in a copy of the complete
result in `path` (new images added to the input are done, finished ones skipped). The settings a
result was made with (`settings.json`) must be this run's for it to be continued.
"""

import contextlib
import glob
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ogan_pl.run.rundir import LOCK_FILE, RunDirectoryLock, first_difference
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import atomic_write, now_iso
from ogan_pl.utils.stopping import StopRequested, deferred

MANIFEST = "manifest.json"
SETTINGS = "settings.json"
HYDRA_OPTIONS = ("overwrite=true", "resume=true")  # how the messages name the two choices; argparse tools
FLAG_OPTIONS = ("--overwrite", "--resume")  # pass these


def _contents(path: Path) -> list[Path]:
    return [p for p in path.iterdir() if p.name != LOCK_FILE] if path.is_dir() else []


def _partials(path: Path) -> list[Path]:
    """Hidden folders of earlier runs into `path` that did not finish, newest first."""
    found = [p for p in path.parent.glob(f".{glob.escape(path.name)}.partial-*") if p.is_dir()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def check_writable(path: Path, key: str = "output") -> None:
    """Refuse, before any work, a path under a file or in a folder this process cannot write."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    folder = existing if existing != path or path.is_dir() else path.parent
    if not folder.is_dir():
        raise UserError(f"{key}={path}: cannot write there ({folder} is a file, not a folder)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{key}={path}: cannot write there ({folder} is not writable)")


def check_output(
    path: Path,
    tool: str,
    key: str = "output",
    overwrite: bool = False,
    resume: bool | None = None,
    options: tuple[str, str] = HYDRA_OPTIONS,
) -> None:
    """Refuse, before any work, an output folder that this run may not write. `resume`: None for a
    tool that cannot resume."""
    replace, finish = options
    check_writable(path, key)
    if path.exists() and not path.is_dir():
        raise UserError(f"{key}={path} is a file; give a folder (a new one, or one that {tool} wrote)")
    if overwrite and resume:
        raise UserError(f"{replace} and {finish}: choose one ({replace} starts afresh, {finish} continues)")
    if not _contents(path):
        return
    if not (path / MANIFEST).is_file():
        raise UserError(
            f"{key}={path} is not empty and not written by an ogan_pl tool; give a new or empty "
            "folder (it is never replaced)"
        )
    if not (overwrite or resume):
        raise UserError(
            f"{key}={path} holds an earlier result; give a new folder, or {replace} to replace it whole"
            + (f", or {finish} to finish it" if resume is not None else "")
        )


def _check_settings(folder: Path, settings: dict | None, key: str, path: Path, replace: str) -> None:
    if settings is None:
        return
    try:
        kept = json.loads((folder / SETTINGS).read_text())
    except (OSError, ValueError):
        raise UserError(
            f"{key}={path}: the earlier result has no readable {SETTINGS}, so it cannot be "
            f"continued; {replace} starts afresh"
        ) from None
    difference = first_difference(kept, settings, "")
    if difference:
        raise UserError(
            f"{key}={path}: the earlier result was made with other settings "
            f"({difference.lstrip('.')}); resume with the same ones, or {replace} to start afresh"
        )


def _start(
    path: Path,
    staging: Path,
    key: str,
    overwrite: bool,
    resume: bool | None,
    settings: dict | None,
    options: tuple[str, str],
) -> bool:
    """Fill `staging` with what this run starts from: nothing, or (resume) the work to continue. True
    if it holds work of an earlier run."""
    replace, finish = options
    partials = _partials(path)
    inherited = False
    if resume:
        if partials:
            _check_settings(partials[0], settings, key, path, replace)
            if partials[0] != staging:
                os.rename(partials[0], staging)
            inherited = True
        elif (path / MANIFEST).is_file():
            _check_settings(path, settings, key, path, replace)
            shutil.copytree(path, staging, ignore=shutil.ignore_patterns(LOCK_FILE, MANIFEST))
            inherited = True
    elif partials and resume is not None and not overwrite:
        raise UserError(
            f"{key}={path}: an interrupted run left its finished images in {partials[0].name}; "
            f"{finish} finishes them, {replace} starts afresh"
        )
    for stale in _partials(path):  # of runs stopped or killed that nothing else will continue
        if stale != staging:
            shutil.rmtree(stale, ignore_errors=True)
    staging.mkdir(exist_ok=True)
    if settings is not None:
        atomic_write(staging / SETTINGS, lambda f: f.write(json.dumps(settings, indent=1, sort_keys=True).encode()))
    return inherited


@contextlib.contextmanager
def staged_output(
    path: str | Path,
    tool: str,
    key: str = "output",
    overwrite: bool = False,
    resume: bool | None = None,
    settings: dict | None = None,
    options: tuple[str, str] = HYDRA_OPTIONS,
) -> Iterator[Path]:
    """`with staged_output(cfg.output, "ogan-invert", overwrite=cfg.overwrite) as out:` write into
    `out`. `resume` (None: the tool cannot resume) and `settings` as in the module docstring; `options`:
    how the messages spell the tool's overwrite and resume choices."""
    path = Path(path)
    check_output(path, tool, key, overwrite, resume, options)
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{key}={path}: cannot write there ({err.strerror})") from None
    staging = path.parent / f".{path.name}.partial-{os.getpid()}"
    old = path.parent / f".{path.name}.old-{os.getpid()}"
    keep = True  # until this run has made `staging` its own: never remove what another run left
    try:
        with RunDirectoryLock(
            path, what=key, owner=f"another run of {tool}", hint=f"wait for it to end, or give another {key}="
        ):
            check_output(path, tool, key, overwrite, resume, options)  # again, now that no other run can write there
            inherited = _start(path, staging, key, overwrite, resume, settings, options)
            keep = inherited  # a resumed run that fails keeps the earlier run's work for the next resume
            try:
                yield staging
            except (KeyboardInterrupt, StopRequested) as stop:
                keep = resume is not None
                stop.add_note(
                    f"{key}={path} unchanged"
                    + (
                        f"; the images finished so far are kept aside: run again with {options[1]} to finish"
                        if keep
                        else ""
                    )
                )
                raise
            files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
            with deferred():  # a stop signal waits for the swap: never half of it
                atomic_write(
                    staging / MANIFEST,
                    lambda f: f.write(
                        json.dumps({"tool": tool, "time": now_iso(), "files": files}, indent=1).encode(
                            "utf-8", "surrogateescape"
                        )
                    ),
                )
                os.rename(path, old)  # the lock's file goes with it: held until the move is done
                os.rename(staging, path)
    except BaseException:
        if not keep:
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
