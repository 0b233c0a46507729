"""File writes that a kill or a crash can never leave half-done."""

import datetime
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], sync: bool = True) -> Path:
    """Write `.NAME.PID.tmp` beside `path` with `write(file)`, fsync, then rename over `path`.

    The rename is atomic only within one filesystem, hence the temporary file in the same folder; its
    name is the process's own, so two processes writing one file at once each move in a whole one.
    `sync=False` skips the fsync (many small files that a power cut may lose but never half-write
    as seen by a later run of this process's tool).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    return atomic_write(path, lambda f: torch.save(obj, f))


def append_jsonl(path: str | Path, record: dict) -> Path:
    """Append one JSON object as one line (results files: one line per evaluation)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def pid_alive(pid: int) -> bool:
    """Whether a process of this id runs on this machine (a stale lock or temporary file has none)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def now_iso() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")
