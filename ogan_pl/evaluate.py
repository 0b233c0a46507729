"""`python evaluate.py ckpt=PATH`: load a checkpoint safely, score it, optionally write its grids.

The dataset comes from the config stored in the checkpoint; `dataset.root=...` etc. override it.
Scores: FID / KID / IS (see ogan_pl.metrics.image_metrics for the protocol) and the encoder
metrics; printed as a table and appended as one JSON line to metrics.jsonl beside the checkpoint.
"""
import logging
import pickle
import re
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ogan_pl.config import safe_instantiate
from ogan_pl.console import image_progress
from ogan_pl.errors import UserError
from ogan_pl.grids import GridInputs, make_grids, save_grids
from ogan_pl.io import append_jsonl, now_iso
from ogan_pl.metrics import (IMAGE_METRICS, ImageMetrics, InceptionFeatures, add_generated, encoder_metrics,
                             fake_noise, prepare_real_stats)
from ogan_pl.module import OGAN
from ogan_pl.sweep import write_result

log = logging.getLogger(__name__)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> OGAN:
    """OGAN from a train.py checkpoint, refusing files that would run code or instantiate foreign targets."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found; pass ckpt=PATH to a .ckpt written by train.py")
    try:
        return OGAN.load_from_checkpoint(path, map_location=map_location)
    except UserError:
        raise
    except pickle.UnpicklingError as err:
        blocked = re.search(r"GLOBAL (\S+)", str(err))
        if blocked:
            raise UserError(f"refusing to load {path}: it asks to import {blocked.group(1)}, and a checkpoint may "
                            "hold only tensors and plain containers (it could run code)") from None
        raise UserError(f"cannot read checkpoint {path} (not a torch checkpoint, or corrupt); "
                        "is it a complete .ckpt written by train.py?") from None
    except (RuntimeError, EOFError, KeyError, TypeError, ValueError, OSError) as err:
        raise UserError(f"cannot read checkpoint {path} ({type(err).__name__}: {str(err).splitlines()[0]}); "
                        "is it a complete .ckpt written by train.py?") from None


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={name} but no CUDA GPU is available; use device=cpu or device=auto")
    return torch.device(name)


def build_datamodule(stored: dict, overrides: DictConfig, cache_dir: str):
    """The checkpoint's dataset config with the non-null command-line overrides applied, and this
    machine's cache folder instead of the training machine's."""
    given = {k: v for k, v in OmegaConf.to_container(overrides).items() if v is not None}
    dataset = {**stored["dataset"], **given}
    if "cache_dir" in dataset:
        dataset["cache_dir"] = cache_dir
    if "root" in dataset and not Path(str(dataset["root"])).is_dir():
        raise UserError(f"dataset.root={dataset['root']} (from the checkpoint) does not exist; "
                        "point it at the data with dataset.root=DIR")
    return safe_instantiate(dataset, name="dataset")


PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


def check_metrics_config(cfg: DictConfig) -> None:
    names = list(cfg.metrics.names)
    known = (*IMAGE_METRICS, "encoder")
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UserError(f"metrics.names={names} must be a non-empty list of {', '.join(known)} "
                        "(e.g. metrics.names=[fid])")
    if not (isinstance(cfg.metrics.n_fake, int) and cfg.metrics.n_fake >= 2):
        raise UserError(f"metrics.n_fake={cfg.metrics.n_fake} must be an integer >= 2 (50000 for published FID)")
    if cfg.metrics.n_real is not None and not (isinstance(cfg.metrics.n_real, int) and cfg.metrics.n_real >= 2):
        raise UserError(f"metrics.n_real={cfg.metrics.n_real} must be an integer >= 2, or null for all images")
    if str(cfg.precision) not in PRECISIONS:
        raise UserError(f"precision={cfg.precision} must be one of {', '.join(PRECISIONS)}")


def image_metric_scores(cfg: DictConfig, extractor: InceptionFeatures, model: OGAN, datamodule,
                        start_progress) -> tuple[dict, dict]:
    """FID / KID / IS of the generator: (scores, protocol)."""
    mcfg = cfg.metrics
    names = [n for n in mcfg.names if n in IMAGE_METRICS]
    metrics = ImageMetrics(extractor, names, mcfg.kid_subsets, mcfg.kid_subset_size, mcfg.is_splits)
    metrics.to(model.device)
    protocol = {"n_fake": mcfg.n_fake, "noise_seed": cfg.seed, "use_ema": cfg.use_ema and model.has_ema,
                "precision": str(cfg.precision), "input": "uint8, rounded and clamped from [-1, 1]",
                **extractor.protocol}
    if metrics.needs_real:
        n_total = len(datamodule.train_set) if mcfg.n_real is None else min(mcfg.n_real, len(datamodule.train_set))
        info = prepare_real_stats(metrics, datamodule, cfg.paths.cache_dir, mcfg.n_real, mcfg.batch_size,
                                  on_batch=start_progress("real images", n_total))
        protocol.update(n_real=info["n_real"], real_split=info["real_split"])
        protocol["real_stats"] = {"file": info["real_stats_file"], "cached": info["real_stats_cached"]}
    z = fake_noise(mcfg.n_fake, model.z_dim, cfg.seed)
    add_generated(metrics, model, z, mcfg.batch_size, cfg.use_ema, PRECISIONS[str(cfg.precision)],
                  on_batch=start_progress("generated images", mcfg.n_fake))
    torch.manual_seed(cfg.seed)  # KID and IS draw their subsets from the global generator
    scores = metrics.compute()
    if metrics.kid is not None:
        protocol.update(kid_subsets=mcfg.kid_subsets, kid_subset_size=metrics.kid.subset_size)
    if metrics.inception_score is not None:
        protocol.update(is_splits=mcfg.is_splits)
    return scores, protocol


def print_table(scores: dict[str, float]) -> None:
    width = max(len(k) for k in scores)
    print(f"{'metric':<{width}}  value")
    for name, value in scores.items():
        print(f"{name:<{width}}  {value:.6g}")


def evaluate(cfg: DictConfig) -> dict:
    if OmegaConf.is_missing(cfg, "ckpt"):
        raise UserError("no checkpoint given: pass ckpt=PATH (e.g. ckpt=logs/train/runs/RUN/checkpoints/last.ckpt)")
    check_metrics_config(cfg)
    started = time.perf_counter()
    device = pick_device(cfg.device)
    model = load_checkpoint(cfg.ckpt).to(device).eval()
    extractor = None  # before any data is read, so missing Inception weights stop the evaluation at once
    if any(n in IMAGE_METRICS for n in cfg.metrics.names):
        extractor = InceptionFeatures.load(cfg.metrics.inception_weights, cfg.metrics.download, cfg.metrics.antialias)
    if cfg.use_ema and not model.has_ema:
        log.warning("the checkpoint has no EMA weights (model.ema_decay=0); using the raw weights")
    datamodule = build_datamodule(model.hparams.config, cfg.dataset, cfg.paths.cache_dir)
    datamodule.setup()

    scores, protocol = {}, {}
    with image_progress() as start_progress:
        if extractor is not None:
            scores, protocol = image_metric_scores(cfg, extractor, model, datamodule, start_progress)
    if "encoder" in cfg.metrics.names:
        enc = cfg.metrics.encoder
        scores.update(encoder_metrics(model, datamodule, enc.n_rho, enc.n_probe_train, cfg.metrics.batch_size,
                                      cfg.use_ema, cfg.seed))
        protocol.update(n_holdout=len(datamodule.holdout_set), n_rho=enc.n_rho)
    print_table(scores)

    ckpt = Path(cfg.ckpt).resolve()
    record = {"ckpt": str(ckpt), "g_iter": model.g_iter, "kimg": model.kimg, "metrics": scores,
              "protocol": protocol, "seed": cfg.seed, "device": str(device),
              "wall_time_s": round(time.perf_counter() - started, 3), "time": now_iso(), "source": "evaluate.py"}
    target = Path(cfg.results_file or ckpt.parent / "metrics.jsonl")
    try:
        results = append_jsonl(target, record)
    except OSError as err:
        raise UserError(f"cannot append the results to {target} ({err.strerror}); "
                        "pass results_file=PATH to write them elsewhere") from None
    print(f"results appended to {results}")
    if cfg.grids:
        record["grids"] = write_grids(cfg, model, datamodule)
    return write_result(cfg.out_dir, record)  # for the summary of `evaluate.py -m ckpt=a,b`


def write_grids(cfg: DictConfig, model: OGAN, datamodule) -> dict[str, str]:
    layout = cfg.grid_layout
    holdout = datamodule.holdout_batch(layout.n_recon + 2 * layout.interp_rows)
    inputs = GridInputs.create(model.z_dim, holdout["image"], n_samples=layout.n_samples, n_recon=layout.n_recon,
                               interp_rows=layout.interp_rows, interp_steps=layout.interp_steps, seed=cfg.seed)
    paths = save_grids(make_grids(model, inputs, cfg.use_ema), cfg.out_dir)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return {k: str(v) for k, v in paths.items()}
