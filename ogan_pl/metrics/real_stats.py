"""Real-image feature statistics, computed once and cached on disk (as StyleGAN2-ADA does).

A cache file is keyed by a hash of everything the statistics depend on: the dataset's identity
(class, root, seed, ...), split, resolution, channels, number of images and feature extractor.
It is loaded with weights_only and memory-mapped; a corrupt or mismatched file is recomputed.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ogan_pl.utils.io import atomic_torch_save

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class RealStats:
    """Sufficient statistics of FID (float64) and, for KID, the features themselves (float32)."""

    features_sum: Tensor  # (D,)
    features_cov_sum: Tensor  # (D, D), the sum of f f^T
    num_samples: int
    features: Tensor | None = None  # (N, D); None when only FID was asked for

    def is_consistent(self) -> bool:
        d = self.features_sum.shape[0]
        return (
            self.features_sum.dtype == torch.float64
            and self.features_cov_sum.shape == (d, d)
            and self.num_samples >= 2
            and bool(torch.isfinite(self.features_sum).all())
            and (self.features is None or tuple(self.features.shape) == (self.num_samples, d))
        )


def stats_key(dataset: dict, split: str, num_images: int, extractor: str) -> dict:
    return {
        "version": FORMAT_VERSION,
        "dataset": dataset,
        "split": split,
        "num_images": num_images,
        "extractor": extractor,
    }


def cache_file(cache_dir: str | Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return Path(cache_dir) / "real_stats" / f"{digest}.pt"


def load_cached(path: Path, key: dict, need_features: bool) -> RealStats | None:
    """The cached statistics if the file exists, reads, matches `key` and holds what is needed."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        stats = RealStats(**blob["stats"])
        if blob["key"] != key or not stats.is_consistent():
            log.warning("real-statistics cache %s does not match its key; recomputing", path)
            return None
    except Exception as err:  # noqa: BLE001 - anything unreadable is recomputed, never trusted
        log.warning("real-statistics cache %s is unreadable (%s); recomputing", path, type(err).__name__)
        return None
    if need_features and stats.features is None:
        return None
    return stats


def save_cached(path: Path, key: dict, stats: RealStats) -> None:
    atomic_torch_save(
        {
            "key": key,
            "stats": {
                "features_sum": stats.features_sum.cpu(),
                "features_cov_sum": stats.features_cov_sum.cpu(),
                "num_samples": int(stats.num_samples),
                "features": None if stats.features is None else stats.features.cpu().contiguous(),
            },
        },
        path,
    )
