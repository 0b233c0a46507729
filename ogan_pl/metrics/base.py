"""Metrics by name (StyleGAN2-ADA's metric registry): `evaluate.py metrics.names=[fid,encoder]` and the
training callback compute any registered metric the same way.

A metric is one class registered in METRICS; its constructor takes its options (config node
`metrics.<name>`), `compute(ctx)` returns {score name: value}. What several metrics share (one
Inception pass for FID, KID and IS; the feature network; cached real statistics) lives in the
`MetricSet`, which survives from one evaluation to the next during training.
"""

import abc
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ogan_pl.registry.plugins import load_plugins
from ogan_pl.registry.registries import METRICS
from ogan_pl.utils.errors import UserError

Progress = Callable[[str, int], Callable[[int], None]]


@dataclass
class MetricContext:
    """One evaluation: what is scored and how (shared by every metric of the set)."""

    model: Any  # ogan_pl.OGAN
    datamodule: Any
    n_fake: int = 50000  # generated images for distribution metrics
    n_real: int | None = None  # real images for their statistics; None = the whole training set
    batch_size: int = 250
    seed: int = 0  # noise of the generated images, subset draws
    use_ema: bool = True
    autocast_dtype: torch.dtype | None = None
    cache_dir: str = ".cache/ogan_pl"
    inception_weights: str | None = None
    download: bool = True
    antialias: bool = False
    classifier: dict | None = None  # the domain classifier's settings (metrics.classifier)
    rank: int = 0
    world_size: int = 1
    progress: Progress | None = None
    memo: dict = field(default_factory=dict)  # results shared by the metrics of this one evaluation

    def on_batch(self, label: str, total: int) -> Callable[[int], None] | None:
        return None if self.progress is None else self.progress(label, total)


class Metric(abc.ABC):
    #: every rank computes its share and the metric combines them; otherwise rank 0 alone computes it
    distributed = False
    #: the scores for which higher is better (best-checkpoint tracking); lower is better for the others
    higher_is_better: tuple[str, ...] = ()

    def min_fake(self) -> int:
        """The fewest generated images this metric can be computed from."""
        return 1

    def setup(self, ctx: MetricContext, shared: dict) -> None:
        """One-time work before any data is read (loading weights), so a missing file stops at once."""
        return None  # most metrics have none

    @abc.abstractmethod
    def compute(self, ctx: MetricContext, shared: dict) -> tuple[dict[str, float], dict]:
        """-> (scores, protocol): the numbers, and what makes them comparable (for results files)."""


class MetricSet:
    """The metrics named in `names`, built through the registry with their options."""

    def __init__(self, names, options: Mapping | None = None):
        names = list(names or [])
        if not names:
            raise UserError(f"metrics.names is empty; name at least one of {', '.join(METRICS.names())}")
        load_plugins()
        options = options or {}
        self.metrics: dict[str, Metric] = {}
        for name in names:
            node = options.get(name) or {}
            if not isinstance(node, Mapping):
                node = {}
            self.metrics[name] = METRICS.build({"_name_": name, **node}, f"metrics.{name}")
        self.shared: dict = {"metric_set": self}  # state kept across evaluations (weights, real statistics)

    @property
    def names(self) -> list[str]:
        return list(self.metrics)

    def check_n_fake(self, n_fake: int, key: str = "metrics.n_fake") -> None:
        """Refuse fewer generated images than a metric of the set can be computed from."""
        for name, metric in self.metrics.items():
            need = metric.min_fake()
            if n_fake < need:
                raise UserError(
                    f"{key}={n_fake} is too few for metric {name}: it needs at least {need} generated "
                    "images (50000 for published FID/KID/IS)"
                )

    def setup(self, ctx: MetricContext) -> None:
        for metric in self.metrics.values():
            metric.setup(ctx, self.shared)

    def compute(self, ctx: MetricContext) -> tuple[dict[str, float], dict]:
        """All scores of this evaluation; under DDP rank > 0 skips the metrics rank 0 computes alone."""
        ctx.memo.clear()
        scores, protocol, seconds = {}, {}, {}
        for name, metric in self.metrics.items():
            if ctx.rank != 0 and not metric.distributed:
                continue
            start = time.perf_counter()
            got, proto = metric.compute(ctx, self.shared)
            seconds[name] = round(time.perf_counter() - start, 4)
            scores.update(got)
            reference = {**protocol.get("reference", {}), **proto.pop("reference", {})}
            protocol.update(proto)
            if reference:  # the same scores for real data, from every metric that has them
                protocol["reference"] = reference
        protocol["seconds"] = seconds  # each metric's own time (shared work falls to the first that needs it)
        return scores, protocol

    def lower_is_better(self, score: str) -> bool:
        """Direction of a score (e.g. 'fid', 'recon/psnr'), as the metric that produces it declares."""
        return not any(score in m.higher_is_better for m in self.metrics.values())
