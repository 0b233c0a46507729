"""train.py whose checkpoint writes become slow from the SLOW_SAVE_FROM-th one on (1-based).

That write puts half of its bytes into the temporary file, writes the temporary file's path to
SLOW_SAVE_MARKER and sleeps, so that a test can SIGKILL the process in the middle of a save.
"""

import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch

real_save = torch.save
checkpoint_writes = 0


def slow_save(obj, f, *args, **kwargs):
    global checkpoint_writes
    if str(getattr(f, "name", "")).endswith(".tmp") and ".ckpt." in str(f.name):  # atomic_write's .NAME.PID.tmp
        checkpoint_writes += 1
        if checkpoint_writes >= int(os.environ["SLOW_SAVE_FROM"]):
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            f.flush()
            # atomic: the test must never read a half-written marker
            atomic_write(os.environ["SLOW_SAVE_MARKER"], lambda marker: marker.write(str(f.name).encode()))
            time.sleep(600)
    return real_save(obj, f, *args, **kwargs)


torch.save = slow_save

from ogan_pl.run.cli import run  # noqa: E402 - after torch.save is replaced above
from ogan_pl.run.train import train  # noqa: E402 - after torch.save is replaced above
from ogan_pl.utils.io import atomic_write  # noqa: E402 - after torch.save is replaced above

if __name__ == "__main__":
    run("config", train, handles_stops=True)
