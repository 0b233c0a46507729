"""`python evaluate.py ckpt=PATH` / `ogan-evaluate ckpt=PATH`: load a checkpoint safely, score it, optionally write its grids.

The dataset comes from the config stored in the checkpoint; `dataset.root=...` etc. override it.
Scores: FID / KID / IS (see ogan_pl.metrics.image_metrics for the protocol) and the encoder
metrics; printed as a table and appended as one JSON line to metrics.jsonl beside the checkpoint.
"""

import logging
import time
from pathlib import Path
from typing import Annotated, Literal

import torch
from omegaconf import DictConfig, OmegaConf
from pydantic import Field

from ogan_pl.checkpoints import PRETRAINED_PREFIX, checkpoint_name
from ogan_pl.config.schema import MetricOptions, ModelCommandConfig
from ogan_pl.grids import GridInputs, GridLayout, make_grids, save_grids
from ogan_pl.metrics import MetricContext, MetricSet
from ogan_pl.module import OGAN
from ogan_pl.registry.values import NonNegativeInt, at_least, non_empty
from ogan_pl.run.cli import run
from ogan_pl.run.models import checkpoint_datamodule, open_model
from ogan_pl.run.rundir import save_run_config
from ogan_pl.run.sweeps import write_result
from ogan_pl.utils.console import image_progress
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import append_jsonl, now_iso

log = logging.getLogger(__name__)


PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


class EvaluateMetrics(MetricOptions):
    names: non_empty(str, "[fid,encoder]")
    n_fake: at_least(2, "50000 for published FID")
    n_real: at_least(2, "null: the whole training set") | None


class EvaluateConfig(ModelCommandConfig):
    """conf/evaluate.yaml."""

    precision: Annotated[Literal["32", "bf16", "16", 32, 16], Field(description="one of: 32, bf16, 16")]
    seed: NonNegativeInt
    results_file: str | None
    grids: bool
    out_dir: str
    metrics: EvaluateMetrics
    dataset: dict  # overrides of the checkpoint's dataset, checked by its DataModule's signature
    grid_layout: GridLayout


def print_table(scores: dict[str, float]) -> None:
    width = max(len(k) for k in scores)
    print(f"{'metric':<{width}}  value")
    for name, value in scores.items():
        print(f"{name:<{width}}  {value:.6g}")


def evaluate(cfg: DictConfig) -> dict:
    options = OmegaConf.to_container(cfg.metrics, resolve=True)
    metric_set = MetricSet(options.pop("names"), options)
    metric_set.check_n_fake(cfg.metrics.n_fake)
    started = time.perf_counter()
    model = open_model(cfg.ckpt, cfg.device)
    device = model.device
    if cfg.use_ema and not model.has_ema:
        log.warning("the checkpoint has no EMA weights (ogan.ema_decay=0); using the raw weights")
    datamodule = checkpoint_datamodule(model, cfg.paths.cache_dir, OmegaConf.to_container(cfg.dataset))
    mcfg = cfg.metrics
    with image_progress() as start_progress:
        ctx = MetricContext(
            model=model,
            datamodule=datamodule,
            n_fake=mcfg.n_fake,
            n_real=mcfg.n_real,
            batch_size=mcfg.batch_size,
            seed=cfg.seed,
            use_ema=cfg.use_ema,
            autocast_dtype=PRECISIONS[str(cfg.precision)],
            cache_dir=cfg.paths.cache_dir,
            inception_weights=mcfg.inception_weights,
            download=mcfg.download,
            antialias=mcfg.antialias,
            classifier=OmegaConf.to_container(mcfg.classifier),
            progress=start_progress,
        )
        metric_set.setup(ctx)  # before any data is read: missing weights stop the evaluation at once
        save_run_config(cfg, cfg.out_dir)  # once the evaluation can run: a refused one writes nothing
        datamodule.setup()
        scores, protocol = metric_set.compute(ctx)
    protocol["precision"] = str(cfg.precision)
    print_table(scores)

    ckpt = checkpoint_name(cfg.ckpt)
    record = {
        "ckpt": ckpt,
        "g_iter": model.g_iter,
        "kimg": model.kimg,
        "metrics": scores,
        "protocol": protocol,
        "seed": cfg.seed,
        "device": str(device),
        "wall_time_s": round(time.perf_counter() - started, 3),
        "time": now_iso(),
        "source": "evaluate.py",
    }
    # beside the checkpoint; a shipped model's in the current folder (never inside the installed package)
    beside = Path("metrics.jsonl") if ckpt.startswith(PRETRAINED_PREFIX) else Path(ckpt).parent / "metrics.jsonl"
    target = Path(cfg.results_file or beside)
    try:
        results = append_jsonl(target, record)
    except OSError as err:
        raise UserError(
            f"cannot append the results to {target} ({err.strerror}); pass results_file=PATH to write them elsewhere"
        ) from None
    print(f"results appended to {results}")
    if cfg.grids:
        record["grids"] = write_grids(cfg, model, datamodule)
    return write_result(cfg.out_dir, record)  # for the summary of `evaluate.py -m ckpt=a,b`


def write_grids(cfg: DictConfig, model: OGAN, datamodule) -> dict[str, str]:
    layout = cfg.grid_layout
    holdout = datamodule.holdout_batch(layout.n_recon + 2 * layout.interp_rows)
    inputs = GridInputs.create(
        model.z_dim,
        holdout["image"],
        n_samples=layout.n_samples,
        n_recon=layout.n_recon,
        interp_rows=layout.interp_rows,
        interp_steps=layout.interp_steps,
        seed=cfg.seed,
    )
    paths = save_grids(make_grids(model, inputs, cfg.use_ema), cfg.out_dir)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return {k: str(v) for k, v in paths.items()}


def main() -> None:
    """The `ogan-evaluate` console script (and `python evaluate.py`)."""
    run("evaluate", evaluate, EvaluateConfig)


if __name__ == "__main__":
    main()
