"""Checkpoint files: every read and write of a `.ckpt` goes through here.

Reading: `OGAN.load_from_checkpoint`, `evaluate.py ckpt=`, `train.py ckpt_path=` and `resume=auto`
all call `read_checkpoint`. A checkpoint is a file from a stranger. It is unpickled with torch's
weights-only unpickler (tensors and plain containers, no code), and the config stored in it, the
model's recipe, may only name registered parts with plain-valued arguments (ogan_pl.config.recipe):
it is checked once, into the `Checkpoint`'s Recipe, before anything is built, and nothing a
checkpoint says is ever imported or called by name. Writing: `AtomicCheckpointIO`, Lightning's checkpoint IO (conf/trainer/default.yaml).
"""

import logging
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins import TorchCheckpointIO

from ogan_pl.config.recipe import Recipe
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import atomic_torch_save

log = logging.getLogger(__name__)

#: models shipped inside the package (docs/pretrained.md): `ckpt=pretrained:NAME` in every command
#: that takes a checkpoint, `directions=pretrained:NAME` for their editing directions
PRETRAINED_PREFIX = "pretrained:"
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
PRETRAINED = ("digits",)


def pretrained_file(name: str, suffix: str, key: str = "ckpt") -> Path:
    """The shipped file of pretrained model `name` (`.ckpt`, or `.directions.pt`)."""
    if name not in PRETRAINED:
        raise UserError(
            f"{key}={PRETRAINED_PREFIX}{name}: no such pretrained model; shipped: "
            + ", ".join(PRETRAINED_PREFIX + n for n in PRETRAINED)
        )
    path = PRETRAINED_DIR / f"{name}{suffix}"
    if not path.is_file():
        raise UserError(f"{key}={PRETRAINED_PREFIX}{name}: {path} is missing from this installation; reinstall ogan_pl")
    return path


def local_path(path: str | Path, suffix: str = ".ckpt", key: str = "ckpt") -> Path:
    """A path as given, or the shipped file that `pretrained:NAME` names."""
    text = str(path)
    return (
        pretrained_file(text[len(PRETRAINED_PREFIX) :], suffix, key)
        if text.startswith(PRETRAINED_PREFIX)
        else Path(path)
    )


def checkpoint_name(path: str | Path) -> str:
    """How results name a checkpoint: `pretrained:NAME` as given, any other path resolved."""
    text = str(path)
    return text if text.startswith(PRETRAINED_PREFIX) else str(Path(path).resolve())


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's contents (weights-only unpickled) and its checked recipe."""

    contents: dict
    recipe: Recipe
    path: str = "checkpoint"

    @classmethod
    def check(cls, contents: Any, path: str | Path = "checkpoint") -> "Checkpoint":
        """Contents read from a file, their stored config checked (one line otherwise)."""
        return cls(contents, Recipe.check(stored_config(contents, path)), str(path))


def read_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint at `path` (or the shipped `pretrained:NAME`), weights-only unpickling, its stored
    config checked; one-line errors."""
    path = local_path(path)
    if path.is_dir():
        found = [
            p
            for p in (path / "checkpoints", path)
            if (p / "last.ckpt").is_file() or (p / "best_encoder.ckpt").is_file()
        ]
        hint = (
            f", e.g. {found[0] / 'best_encoder.ckpt'} (the run's best encoder) or {found[0] / 'last.ckpt'}"
            if found
            else ""
        )
        raise UserError(f"checkpoint {path} is a directory; give the path of a .ckpt file inside it{hint}")
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found; give the path of a .ckpt written by train.py")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:
        blocked = re.search(r"GLOBAL (\S+)", str(err))
        if blocked:
            raise UserError(
                f"refusing to load {path}: it asks to import {blocked.group(1)}, and a checkpoint may "
                "hold only tensors and plain containers (it could run code)"
            ) from None
        raise UserError(
            f"cannot read checkpoint {path} (not a torch checkpoint, or corrupt); "
            "is it a complete .ckpt written by train.py?"
        ) from None
    except Exception as err:  # noqa: BLE001 - truncated, empty, random bytes: whatever torch raises, one line
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise UserError(
            f"cannot read checkpoint {path} ({type(err).__name__}: {first}); "
            "is it a complete .ckpt written by train.py?"
        ) from None
    return Checkpoint.check(checkpoint, path)


#: arguments added to a part after checkpoints were written without them, whose default then
#: changed: (registry key, part name, argument, the value those checkpoints were trained with)
PAST_DEFAULTS = (("model", "resnet", "pooling", "sum"),)
#: values added to ogan_pl's own sections after checkpoints were written without them:
#: (section, key, the value those checkpoints were trained with)
PAST_SECTION_VALUES = (("optim", "decay", "none"), ("optim", "decay_start", 0.5), ("optim", "decay_final", 1.0))
#: loss.corr_on (both | encoder), replaced by loss.corr_factor_g: encoder is G's lambda 0
PAST_CORR_ON = {"both": 1.0, "encoder": 0.0}


def _past_corr_on(loss: Mapping) -> Mapping:
    if "corr_on" not in loss:
        return loss
    rest = {k: v for k, v in loss.items() if k != "corr_on"}
    if loss["corr_on"] not in PAST_CORR_ON:  # left for the loss's own check to name
        return loss
    return {**rest, "corr_factor_g": rest.get("corr_factor_g", PAST_CORR_ON[loss["corr_on"]])}


def stored_config(checkpoint: Any, path: str | Path = "checkpoint") -> Any:
    """The config a checkpoint was trained with, written out in today's terms: an argument it predates
    gets the value it was trained with (PAST_DEFAULTS), not today's default."""
    if not (
        isinstance(checkpoint, Mapping)
        and isinstance(checkpoint.get("state_dict"), Mapping)
        and isinstance(checkpoint.get("hyper_parameters"), Mapping)
        and "config" in checkpoint["hyper_parameters"]
    ):
        raise UserError(f"{path} is not a checkpoint written by train.py (no state_dict and stored config)")
    config = checkpoint["hyper_parameters"]["config"]
    if not isinstance(config, Mapping):
        return config
    for key, name, arg, value in PAST_DEFAULTS:
        node = config.get(key)
        if isinstance(node, Mapping) and node.get("_name_") == name and arg not in node:
            config = {**config, key: {**node, arg: value}}
    for section, key, value in PAST_SECTION_VALUES:
        node = config.get(section)
        if isinstance(node, Mapping) and key not in node:
            config = {**config, section: {**node, key: value}}
    if isinstance(config.get("loss"), Mapping):
        config = {**config, "loss": _past_corr_on(config["loss"])}
    return config


def checkpoint_g_iter(path: Path) -> int | None:
    """The generator iteration a checkpoint was saved at, or None if the file does not load.

    Memory-mapped and weights-only: reading the counter of a large checkpoint costs almost nothing.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        return int(checkpoint["ogan"]["g_iter"])
    except Exception as err:  # noqa: BLE001 - truncated, corrupt or foreign file: never resume from it
        log.warning("ignoring checkpoint %s: it does not load (%s)", path, type(err).__name__)
        return None


def find_resume_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The loadable `*.ckpt` in `checkpoint_dir` with the highest generator iteration (last.ckpt on a
    tie), or None. Half-written files never have a `.ckpt` name: they are `.NAME.tmp` until renamed."""
    candidates = []
    for path in Path(checkpoint_dir).glob("*.ckpt"):
        g_iter = checkpoint_g_iter(path)
        if g_iter is not None:
            candidates.append((g_iter, path.name == "last.ckpt", path))
    return max(candidates)[2] if candidates else None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write `.NAME.tmp` beside the target, fsync, then rename: a kill mid-save never corrupts a checkpoint.

    Lightning's own save stages the file in the system temp dir and moves it, which is a copy (not
    atomic) when that dir and the run dir are on different filesystems, as on most clusters.
    """

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if "://" in str(path):  # remote storage: keep Lightning's fsspec path
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(checkpoint, path)
