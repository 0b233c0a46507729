"""resume=auto: continue from the newest complete checkpoint in the run directory."""
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def checkpoint_g_iter(path: Path) -> int | None:
    """The generator iteration a checkpoint was saved at, or None if the file does not load.

    Memory-mapped and weights-only: reading the counter of a large checkpoint costs almost nothing.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        return int(checkpoint["ogan"]["g_iter"])
    except Exception as err:  # truncated, corrupt or foreign file: never resume from it
        log.warning("ignoring checkpoint %s: it does not load (%s)", path, type(err).__name__)
        return None


def find_resume_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The loadable `*.ckpt` in `checkpoint_dir` with the highest generator iteration (last.ckpt on a
    tie), or None. Half-written files never have a `.ckpt` name: they are `.NAME.tmp` until renamed."""
    candidates = []
    for path in Path(checkpoint_dir).glob("*.ckpt"):
        g_iter = checkpoint_g_iter(path)
        if g_iter is not None:
            candidates.append((g_iter, path.name == "last.ckpt", path))
    return max(candidates)[2] if candidates else None
