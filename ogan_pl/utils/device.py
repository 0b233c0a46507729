"""Waiting for a device: timings of GPU work end only when the queued kernels have run."""

import torch


def synchronize(device: torch.device) -> None:
    """Block until `device` has finished its queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
