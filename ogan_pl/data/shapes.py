"""The built-in dataset: coloured shapes on black, with known generating factors.

Nothing is downloaded or read from disk. Image i of a (seed, split) is the same whatever the
dataset size, so results are reproducible and held-out images never overlap the training ones.
Factors, one row per image: shape (0 circle, 1 square, 2 triangle), x, y (centre, in [-1, 1]
image coordinates), scale (circumradius), rotation (radians), hue (in [0, 1)).
"""

import numpy as np
import torch

from ogan_pl.data.arrays import ArrayImages

SHAPES = ("circle", "square", "triangle")
FACTORS = ("shape", "x", "y", "scale", "rotation", "hue")
CENTER_RANGE = 0.3
SCALE_RANGE = (0.45, 0.8)
SPLITS = {"train": 0, "holdout": 1}


def sample_factors(n: int, seed: int, split: str = "train") -> np.ndarray:
    """(n, 6) float32 factors; row i depends only on (seed, split, i)."""
    u = np.random.default_rng([seed, SPLITS[split]]).random((n, len(FACTORS)))
    lo, hi = SCALE_RANGE
    return np.stack(
        [
            np.floor(u[:, 0] * len(SHAPES)),
            (u[:, 1] * 2 - 1) * CENTER_RANGE,
            (u[:, 2] * 2 - 1) * CENTER_RANGE,
            lo + u[:, 3] * (hi - lo),
            u[:, 4] * 2 * np.pi,
            u[:, 5],
        ],
        axis=1,
    ).astype(np.float32)


def _hue_to_rgb(hue: np.ndarray, saturation: float = 0.85, value: float = 1.0) -> np.ndarray:
    """(n,) hues -> (n, 3) RGB in [0, 1] (HSV with fixed saturation and value)."""
    k = (np.array([5.0, 3.0, 1.0]) + hue[:, None] * 6) % 6
    return value - value * saturation * np.clip(np.minimum(k, 4 - k), 0, 1)


def render(factors: np.ndarray, resolution: int, channels: int = 3) -> np.ndarray:
    """Anti-aliased rendering of a batch of factor rows -> (n, channels, R, R) uint8."""
    f = factors.astype(np.float64)
    shape, cx, cy, scale, rot, _hue = (f[:, i, None, None] for i in range(6))
    coords = (np.arange(resolution) + 0.5) / resolution * 2 - 1
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    dx, dy = xx[None] - cx, yy[None] - cy
    u = np.cos(rot) * dx + np.sin(rot) * dy  # shape-frame coordinates
    v = -np.sin(rot) * dx + np.cos(rot) * dy
    circle = np.hypot(u, v) - scale
    square = np.maximum(np.abs(u), np.abs(v)) - scale * 0.75
    angles = np.pi / 2 + 2 * np.pi * np.arange(3) / 3  # outward normals of an equilateral triangle
    triangle = np.max([np.cos(a) * u + np.sin(a) * v for a in angles], axis=0) - scale * 0.5
    dist = np.where(shape == 0, circle, np.where(shape == 1, square, triangle))
    alpha = np.clip(0.5 - dist * resolution / 2, 0, 1)  # distance in pixels -> coverage
    rgb = _hue_to_rgb(f[:, 5])[:, :, None, None] * alpha[:, None]
    if channels == 1:
        rgb = (rgb * np.array([0.299, 0.587, 0.114])[None, :, None, None]).sum(1, keepdims=True)
    return np.round(rgb * 255).astype(np.uint8)


class ShapesDataset(ArrayImages):
    """`size` rendered images of one split, kept in memory as uint8 (61 MB for 20k at 32x32 RGB)."""

    def __init__(
        self, size: int, resolution: int = 32, channels: int = 3, seed: int = 0, split: str = "train", chunk: int = 2048
    ):
        factors = torch.from_numpy(sample_factors(size, seed, split))
        images = [render(factors[i : i + chunk].numpy(), resolution, channels) for i in range(0, size, chunk)]
        super().__init__(
            torch.from_numpy(np.concatenate(images)), extras={"factors": factors, "label": factors[:, 0].long()}
        )

    @property
    def factors(self) -> torch.Tensor:
        return self.extras["factors"]
