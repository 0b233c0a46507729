"""Editing directions in code space (docs/method.md, "Editing").

Codes are the latents G reads, z = s * N(E(x)) for real images x. Every direction is a unit vector:

    class means     d = mean(z | y = target) - mean(z | y != target)                  (or | y = source)
                    (a continuous attribute: y = [value > its median])
    linear          d = w / ||w||, w from L2-regularised logistic regression of [y = target] on z
                    (InterFaceGAN: the normal of the separating hyperplane)
    PCA             the top right-singular vectors of the centred codes                (unsupervised)
    SeFa            the top eigenvectors of A A^T, A = G's first layer weight^T with unit columns
                    (Shen & Zhou 2021: closed form from G alone)                      (unsupervised)

An edit moves a code along d: G(z + a * d) for strengths a.
"""

import torch
from torch import Tensor

METHODS = ("class_mean", "linear", "pca", "sefa")
SUPERVISED = ("class_mean", "linear")  # the methods that need labels


def unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _signed(vectors: Tensor) -> Tensor:
    """Each row's sign fixed so that its largest-magnitude entry is positive (SVD/eigh leave it free)."""
    idx = vectors.abs().argmax(dim=1, keepdim=True)
    return vectors * vectors.gather(1, idx).sign()


def class_mean_direction(codes: Tensor, labels: Tensor, target, source=None) -> Tensor:
    """From the other images (or those of class `source`) towards the images of class `target`."""
    codes = codes.double()
    inside = labels == target
    other = labels == source if source is not None else ~inside
    if not inside.any() or not other.any():
        raise ValueError(f"class {target!r} (or the images it is compared with) has no images")
    return unit(codes[inside].mean(0) - codes[other].mean(0)).float()


def linear_direction(codes: Tensor, labels: Tensor, target, l2: float = 1.0, iterations: int = 200) -> Tensor:
    """The unit normal of a logistic-regression boundary between class `target` and the rest:
    minimise sum_i log(1 + exp(-y_i (w.z_i + b))) + l2 / 2 ||w||^2 with y_i in {-1, +1} (L-BFGS, float64)."""
    z = codes.double()
    y = torch.where(labels == target, 1.0, -1.0).double()
    if (y > 0).all() or (y < 0).all():
        raise ValueError(f"class {target!r} needs images inside and outside it")
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=iterations,
        tolerance_grad=1e-10,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.softplus(-y * (z @ w + b)).sum() + 0.5 * l2 * w.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return unit(w.detach()).float()


def pca_directions(codes: Tensor, k: int) -> Tensor:
    """The k principal directions of the codes (k, z_dim), largest variance first."""
    centred = codes.double() - codes.double().mean(0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    return _signed(vh[:k]).float()


def sefa_directions(first_layer_weight: Tensor, k: int) -> Tensor:
    """SeFa's k directions from G's first layer weight (out_features, z_dim), largest eigenvalue first."""
    a = first_layer_weight.detach().double().T  # (z_dim, out): one column per output unit
    a = a / a.norm(dim=0, keepdim=True).clamp_min(1e-12)
    values, vectors = torch.linalg.eigh(a @ a.T)  # ascending
    return _signed(vectors[:, values.argsort(descending=True)[:k]].T).float()


def above_median(values: Tensor) -> Tensor:
    """A continuous attribute as two classes for the supervised directions: True above its median."""
    return values > values.median()


def edit_codes(z: Tensor, direction: Tensor, strengths: Tensor) -> Tensor:
    """z + a * d for every code and strength -> (B, S, z_dim)."""
    return z[:, None, :] + strengths.to(z)[None, :, None] * direction.to(z)[None, None, :]


def combine_edits(z: Tensor, directions: Tensor, strengths: Tensor) -> Tensor:
    """z + sum_k a_k d_k: several directions (K, z_dim) at once, one strength each (K,) -> (B, z_dim)."""
    return z + (strengths.to(z) @ directions.to(z))[None, :]
