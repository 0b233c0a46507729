"""Exponential moving average of a network's weights, with a warm-up.

decay_t = min(decay, (1 + t) / (10 + t)): early on the average follows the live weights instead of
being dominated by the random initialisation. Buffers (BatchNorm running statistics) are copied.
"""

import copy

import torch
from torch import nn


class EMA(nn.Module):
    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).requires_grad_(False).eval()

    def train(self, mode: bool = True) -> "EMA":
        return super().train(False)  # the average is only ever used for inference

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        ema_params = list(self.module.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - self.decay_at(step))
        for ema_buffer, buffer in zip(self.module.buffers(), model.buffers(), strict=True):
            ema_buffer.copy_(buffer)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)
