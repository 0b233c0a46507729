"""The correlation term's two functions (docs/method.md, "Correlation and N(.)").

N(v)       = (v - avg(v)) / std(v)              per sample, over the code's nz entries
rho(a, b)  = avg(N(a) * N(b)) = cos(N(a), N(b))   the Pearson correlation
"""

import torch
from torch import Tensor
from torch.nn import functional as F


def correlation(a: Tensor, b: Tensor, eps: float = 1e-12) -> Tensor:
    """Per-sample Pearson correlation over the last dim: rho = cos(N(a), N(b)).

    Centring and l2-normalising both sides gives exactly cos(N(a), N(b)) (the std cancels, so the
    biased/unbiased question never arises). A constant vector gives 0, with finite gradients.
    """
    a = a.float()
    b = b.float()
    a = F.normalize(a - a.mean(-1, keepdim=True), dim=-1, eps=eps)
    b = F.normalize(b - b.mean(-1, keepdim=True), dim=-1, eps=eps)
    return (a * b).sum(-1)


def standardize(v: Tensor, eps: float = 1e-8) -> Tensor:
    """N(v) = (v - avg(v)) / std(v) per sample over the last dim (biased std)."""
    v = v.float()
    v = v - v.mean(-1, keepdim=True)
    return v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + eps)
