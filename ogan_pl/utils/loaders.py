"""DataLoaders: the options every training-data loader shares, and a loader's first items in one batch."""

import signal

import torch
from torch.utils.data import DataLoader, default_collate


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGTERM / SIGUSR1 / SIGUSR2 to the main process. A job stopped by
    `scancel` or a shell signals its whole process group; a worker that died of it would end the
    run with an error instead of the main process's clean stop (last.ckpt saved, exit 143). The
    workers still end with the main process (its shutdown, or their watchdog if it dies)."""
    for name in ("SIGTERM", "SIGUSR1", "SIGUSR2"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def worker_options(num_workers: int, pin_memory: bool = True, persistent_workers: bool = True) -> dict:
    """DataLoader arguments for `num_workers` workers: pinned memory only when there is a GPU to copy
    to, persistent workers only when there are workers, and workers that ignore stop signals."""
    return {
        "num_workers": num_workers,
        "pin_memory": pin_memory and torch.cuda.is_available(),
        "persistent_workers": persistent_workers and num_workers > 0,
        "worker_init_fn": ignore_stop_signals,
    }


def collate(batch):
    """default_collate, except for a batch that the dataset's `__getitems__` already assembled."""
    return batch if isinstance(batch, dict) else default_collate(batch)


def first_items(data, n: int | None = None, batch_size: int = 1024) -> dict:
    """The first n items (all with n=None) of a DataLoader, or of a Dataset of dict items, collated
    into one dict of CPU tensors."""
    loader = (
        data
        if isinstance(data, DataLoader)
        else DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate)
    )
    parts: dict[str, list] = {}
    count = 0
    for batch in loader:
        for key, value in batch.items():
            parts.setdefault(key, []).append(value)
        count += len(next(iter(batch.values())))
        if n is not None and count >= n:
            break
    return {key: torch.cat(values)[:n] for key, values in parts.items()}
