"""`python evaluate.py ckpt=PATH`: load a checkpoint safely and write its grids.

The dataset comes from the config stored in the checkpoint; `dataset.root=...` etc. override it.
"""
import logging
import pickle
import re
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ogan_pl.config import safe_instantiate
from ogan_pl.errors import UserError
from ogan_pl.grids import GridInputs, make_grids, save_grids
from ogan_pl.module import OGAN

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


def build_datamodule(stored: dict, overrides: DictConfig):
    """The checkpoint's dataset config with the non-null command-line overrides applied."""
    given = {k: v for k, v in OmegaConf.to_container(overrides).items() if v is not None}
    dataset = {**stored["dataset"], **given}
    if "root" in dataset and not Path(str(dataset["root"])).is_dir():
        raise UserError(f"dataset.root={dataset['root']} (from the checkpoint) does not exist; "
                        "point it at the data with dataset.root=DIR")
    return safe_instantiate(dataset, name="dataset")


def evaluate(cfg: DictConfig) -> dict:
    if OmegaConf.is_missing(cfg, "ckpt"):
        raise UserError("no checkpoint given: pass ckpt=PATH (e.g. ckpt=logs/train/runs/RUN/checkpoints/last.ckpt)")
    device = pick_device(cfg.device)
    model = load_checkpoint(cfg.ckpt).to(device).eval()
    if cfg.use_ema and not model.has_ema:
        log.warning("the checkpoint has no EMA weights (model.ema_decay=0); using the raw weights")
    datamodule = build_datamodule(model.hparams.config, cfg.dataset)
    grid_cfg = cfg.grids
    holdout = datamodule.holdout_batch(grid_cfg.n_recon + 2 * grid_cfg.interp_rows)
    inputs = GridInputs.create(model.z_dim, holdout["image"], n_samples=grid_cfg.n_samples,
                               n_recon=grid_cfg.n_recon, interp_rows=grid_cfg.interp_rows,
                               interp_steps=grid_cfg.interp_steps, seed=cfg.seed)
    paths = save_grids(make_grids(model, inputs, cfg.use_ema), cfg.out_dir)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return {"g_iter": model.g_iter, "grids": {k: str(v) for k, v in paths.items()}}
