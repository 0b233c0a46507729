"""Precision, recall, density and coverage of generated images against real ones, in a feature space
(docs/evaluation.md, "Precision, recall, density, coverage").

With NN_k(a, A) the distance from a to its k-th nearest neighbour in A (a itself excluded) and
B(a, r) the closed ball of radius r around a, for real features R (N of them) and generated F (M):

    precision = 1/M sum_f [f in some B(r, NN_k(r, R)), r in R]        Kynkaanniemi et al. 2019, k = 3
    recall    = 1/N sum_r [r in some B(f, NN_k(f, F)), f in F]
    density   = 1/(k M) sum_f #{r : f in B(r, NN_k(r, R))}            Naeem et al. 2020, k = 5
    coverage  = 1/N sum_r [some f in B(r, NN_k(r, R))]

Pairwise distances are computed `chunk` rows at a time, so memory grows with chunk x N, never
N x M. Features keep their dtype when it is float64 (exact ties), otherwise they are float32.
"""

import torch
from torch import Tensor


def _features(x: Tensor) -> Tensor:
    return x if x.dtype == torch.float64 else x.float()


def knn_radii(x: Tensor, ks: tuple[int, ...], chunk: int = 2048) -> dict[int, Tensor]:
    """NN_k(x_i, x) for every row and each k in ks -> {k: (N,)}. A row's own zero distance is the
    first of its k + 1 smallest; a duplicate row is a neighbour at distance 0."""
    x = _features(x)
    top = max(ks) + 1
    if len(x) < top:
        raise ValueError(f"k = {max(ks)} nearest neighbours need at least {top} feature vectors, got {len(x)}")
    smallest = torch.cat(
        [torch.cdist(x[s : s + chunk], x).topk(top, dim=1, largest=False).values for s in range(0, len(x), chunk)]
    )
    return {k: smallest[:, k] for k in ks}


def prdc(
    real: Tensor,
    fake: Tensor,
    k_pr: int = 3,
    k_dc: int = 5,
    chunk: int = 2048,
    real_radii: dict[int, Tensor] | None = None,
) -> dict[str, float]:
    """{precision, recall, density, coverage} of `fake` (M, D) against `real` (N, D), on their device.
    `real_radii`: knn_radii(real, (k_pr, k_dc)) when already computed (the real set rarely changes)."""
    real, fake = _features(real), _features(fake).to(real.device, _features(real).dtype)
    radii = real_radii if real_radii is not None else knn_radii(real, (k_pr, k_dc), chunk)
    r_pr, r_dc = radii[k_pr].to(real), radii[k_dc].to(real)
    fake_radius = knn_radii(fake, (k_pr,), chunk)[k_pr]
    precise = torch.zeros(len(fake), dtype=torch.bool, device=real.device)
    inside = torch.zeros(len(fake), dtype=torch.float64, device=real.device)
    nearest_fake = torch.full((len(real),), torch.inf, dtype=real.dtype, device=real.device)
    recalled = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for s in range(0, len(fake), chunk):  # one pass over the generated x real distances serves all four
        d = torch.cdist(fake[s : s + chunk], real)  # (chunk, N)
        precise[s : s + chunk] = (d <= r_pr).any(1)
        inside[s : s + chunk] = (d <= r_dc).sum(1).double()
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
        recalled |= (d <= fake_radius[s : s + chunk, None]).any(0)
    return {
        "precision": precise.double().mean().item(),
        "recall": recalled.double().mean().item(),
        "density": (inside.sum() / (k_dc * len(fake))).item(),
        "coverage": (nearest_fake <= r_dc).double().mean().item(),
    }
