"""A trained model and its data, opened from a checkpoint for a command: the one preamble of
evaluate.py and the encoder tools (ogan-invert, ogan-directions, ogan-edit)."""

from collections.abc import Mapping
from pathlib import Path

import torch

from ogan_pl.module import OGAN
from ogan_pl.registry.registries import DATASETS
from ogan_pl.registry.values import NAME_KEY
from ogan_pl.run.cli import dataset_defaults
from ogan_pl.utils.errors import UserError


def pick_device(name: str) -> torch.device:
    """`device=`: auto (a GPU if there is one), cpu, cuda, cuda:N or (on a Mac) mps; anything else is
    one line."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"device={name!r} is not a device these commands run on; use device=cpu, cuda, cuda:N or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device={name} but this machine has no Apple GPU (MPS); use device=cpu or device=auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={name} but no CUDA GPU is available; use device=cpu or device=auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(
            f"device={name} but this machine has {torch.cuda.device_count()} GPU(s); use cuda:0 to cuda:N-1"
        )
    return device


def open_model(ckpt: str, device: str = "auto") -> OGAN:
    """The checkpoint's model in eval mode on `device` (auto: a GPU if there is one), read safely
    (ogan_pl.checkpoints)."""
    return OGAN.load_from_checkpoint(ckpt, pick_device(device)).eval()


def checkpoint_datamodule(model: OGAN, cache_dir: str, overrides: Mapping | None = None):
    """The checkpoint's dataset with the non-null `overrides` applied (`dataset.root=...` on the
    command line), and this machine's cache folder instead of the training machine's.
    `overrides["name"]` measures against another registered dataset instead (its defaults, at the
    checkpoint's resolution and channels): e.g. a model trained on a folder of digits judged on the
    built-in digits (conf/dataset/NAME.yaml)."""
    stored = model.hparams.config["dataset"]
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    name = given.pop("name", None)
    if name is not None and name != stored[NAME_KEY]:
        dataset = {
            **dataset_defaults(name),
            NAME_KEY: name,
            **{k: stored[k] for k in ("resolution", "channels", "seed") if k in stored},
            **given,
        }
    else:
        dataset = {**stored, **given}
    if "cache_dir" in dataset:
        dataset["cache_dir"] = cache_dir
    if "root" in dataset and not Path(str(dataset["root"])).is_dir():
        raise UserError(
            f"dataset.root={dataset['root']} (from the checkpoint) does not exist; "
            "point it at the data with dataset.root=DIR"
        )
    return DATASETS.build(dataset, "dataset")
