"""Data-parallel training where each optimizer step touches only E or only G.

Lightning's DDPStrategy wraps the whole LightningModule in torch's DistributedDataParallel, whose
reducer expects every parameter to get a gradient in every backward pass. O-GAN's E step leaves G
without gradients and its G step freezes E, so DDP either fails ("parameters that were not used in
producing the loss") or, with find_unused_parameters, searches the graph and all-reduces both
networks at every step. `GradientAllReduceDDP` does what NVlabs' StyleGAN2-ADA training loop does
instead: no wrapper; identical initial states (broadcast from rank 0); before each optimizer step,
one all-reduce averages the gradients of exactly the parameters that optimizer updates.
"""

import os

import torch
import torch.distributed as dist
from pytorch_lightning.overrides.distributed import _sync_module_states
from pytorch_lightning.strategies import DDPStrategy
from torch import Tensor

from ogan_pl.utils.errors import UserError

#: trainer.strategy names that mean data-parallel training, and how Lightning starts the ranks.
DDP_START_METHODS = {"ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}


def process_rank() -> int:
    """This process's global rank from the launcher's environment (0 before any launcher ran)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_mean_(tensors: list[Tensor]) -> None:
    """Average `tensors` over all ranks in place, with one collective for all of them."""
    if not tensors or not is_distributed():
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)  # SUM: gloo has no AVG
    flat.div_(dist.get_world_size())
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


class GradientAllReduceDDP(DDPStrategy):
    """DDP without the DistributedDataParallel wrapper: gradients are averaged per optimizer step."""

    def __init__(self, start_method: str = "popen", **kwargs):
        super().__init__(start_method=start_method, **kwargs)
        self.start_method = start_method

    def configure_ddp(self) -> None:
        _sync_module_states(self.model)  # every rank starts from rank 0's parameters and buffers

    def optimizer_step(self, optimizer, closure, model=None, **kwargs):
        if self.world_size > 1:
            # before the precision plugin's step: gradient clipping and AMP unscaling see the average
            all_reduce_mean_(
                [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            )
        return super().optimizer_step(optimizer, closure, model, **kwargs)


def _maybe_several(devices) -> bool:
    """Whether Lightning's `devices` value can mean more than one device ("auto" and -1: all there are)."""
    if isinstance(devices, str):
        devices = devices.strip()
        if devices in ("auto", "-1"):
            return True
        if "," in devices:
            return len([d for d in devices.split(",") if d.strip()]) > 1
        return int(devices) > 1
    if isinstance(devices, int):
        return devices == -1 or devices > 1
    return len(devices) > 1


def make_strategy(strategy, devices, num_nodes: int):
    """trainer.strategy as given, except that every DDP variant becomes GradientAllReduceDDP.

    "auto" means DDP whenever more than one process may train (several devices or nodes, or ranks
    started by torchrun / SLURM); other strategies (FSDP, DeepSpeed) are not supported by O-GAN's
    alternating updates.
    """
    if not isinstance(strategy, str):
        return strategy
    if strategy == "auto" and (_maybe_several(devices) or num_nodes > 1):
        strategy = "ddp"
    if strategy in DDP_START_METHODS:
        return GradientAllReduceDDP(start_method=DDP_START_METHODS[strategy])
    if strategy in ("auto", "single_device"):
        return strategy
    raise UserError(
        f"trainer.strategy={strategy!r} is not supported; use auto, ddp or ddp_spawn "
        "(O-GAN's separate E and G updates need their own gradient averaging)"
    )
