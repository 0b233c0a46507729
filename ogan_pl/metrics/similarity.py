"""PSNR and SSIM of image batches by their formulas, on images in [0, 1] (data range L = 1).

PSNR = 10 log10(L^2 / MSE)                          per image, MSE over all its pixels
SSIM = mean over windows of (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))
       C1 = (0.01 L)^2, C2 = (0.03 L)^2; local moments under an 11 x 11 Gaussian window (sigma 1.5),
       windows wholly inside the image ("valid", as Wang et al. 2004's reference code), channels
       averaged. torchmetrics' structural_similarity_index_measure also averages windows that
       overhang a reflect-padded border: its number is ours of the padded images.
"""

import torch
from torch import Tensor

WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03


def psnr(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-image PSNR in dB of (B, C, H, W) batches -> (B,); inf for identical images."""
    mse = (a.double() - b.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)


def _window_matrix(size: int, device) -> Tensor:
    """(size, size - 10): column j holds the Gaussian window over rows j..j+10, so that
    X @ M filters every row of X, keeping the positions whose window lies inside."""
    r = torch.arange(WINDOW, dtype=torch.float32, device=device) - (WINDOW - 1) / 2
    g = torch.exp(-r.pow(2) / (2 * SIGMA**2))
    g = g / g.sum()
    columns = torch.arange(size - WINDOW + 1, device=device)
    m = torch.zeros(size, size - WINDOW + 1, device=device)
    m[columns[:, None] + torch.arange(WINDOW, device=device), columns[:, None]] = g
    return m


def _blur(x: Tensor) -> Tensor:
    """The separable Gaussian filter of (N, H, W) maps, valid region only, as two matrix products."""
    return _window_matrix(x.shape[-2], x.device).T @ x @ _window_matrix(x.shape[-1], x.device)


def ssim(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-image SSIM of (B, C, H, W) batches with H, W >= 11 -> (B,)."""
    batch, channels = a.shape[:2]
    a, b = a.float().flatten(0, 1), b.float().flatten(0, 1)
    moments = _blur(torch.cat([a, b, a * a, b * b, a * b])).chunk(5)
    mu_a, mu_b, aa, bb, ab = moments
    var_a, var_b, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return index.double().flatten(1).mean(1).view(batch, channels).mean(1)
