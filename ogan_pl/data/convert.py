"""Pixel conversions. Datasets yield uint8; the model works in [-1, 1]."""

import torch
from torch import Tensor


def to_model_range(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_unit(images: Tensor) -> Tensor:
    """float [-1, 1] -> float [0, 1] on the CPU, clamped: what image files and image metrics take."""
    return ((images.float().cpu() + 1) / 2).clamp(0, 1)


def to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] -> uint8, rounding (not truncating) and clamping out-of-range values."""
    return ((images.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
