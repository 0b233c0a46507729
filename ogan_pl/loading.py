"""The one way a checkpoint is read: `OGAN.load_from_checkpoint`, `evaluate.py ckpt=`, `train.py
ckpt_path=` and `resume=auto` all come here.

A checkpoint is a file from a stranger. It is unpickled with torch's weights-only unpickler (tensors
and plain containers, no code), and the config stored in it, the model's recipe, may only name
registered parts with plain-valued arguments: `check_recipe` checks all of it before anything is
built, and nothing a checkpoint says is ever imported or called by name.
"""
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ogan_pl.errors import UserError
from ogan_pl.parts import load_plugins, loaded_plugins
from ogan_pl.registry import ARCHITECTURES, AUGMENTS, DATASETS, LOSSES, OPTIMIZERS, Resolved, check_plain

#: the sections of a run's config that a checkpoint stores: what rebuilds its model and data
RECIPE_KEYS = ("model", "ogan", "speed", "loss", "augment", "optim", "train", "dataset", "seed", "plugins")
#: the config nodes that name a registered part
PART_NODES = {("model",): ARCHITECTURES, ("loss",): LOSSES, ("augment",): AUGMENTS, ("optim", "encoder"): OPTIMIZERS,
              ("optim", "generator"): OPTIMIZERS, ("dataset",): DATASETS}
#: part nodes a checkpoint may lack (written before they existed, or a model without data)
OPTIONAL_NODES = (("dataset",), ("augment",))


def recipe(config: Mapping) -> dict:
    """The part of a run's config that a checkpoint keeps (the rest, loggers and callbacks, stays in
    the run directory's config.yaml)."""
    return {key: config[key] for key in RECIPE_KEYS if key in config}


def check_recipe(config: Any) -> dict[str, Resolved]:
    """Every part a stored config names, resolved against the registries; refuses anything else
    with one line naming the key. Imports nothing it names and builds nothing."""
    load_plugins()  # ogan_pl's own parts and installed entry points: what the user's environment has
    if not isinstance(config, Mapping):
        raise UserError(f"the stored config is a {type(config).__name__}, not a mapping")
    for key in config:
        if key not in RECIPE_KEYS:
            raise UserError(f"{key}: refusing an unknown section of a stored config (expected: {', '.join(RECIPE_KEYS)})")
    for key in ("model", "loss", "optim", "train"):
        if not isinstance(config.get(key), Mapping):
            raise UserError(f"{key}: missing from the stored config; is this a checkpoint written by train.py?")
    resolved = {}
    for path, registry in PART_NODES.items():
        node = config
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is None and path in OPTIONAL_NODES:
            continue
        key = ".".join(path)
        try:
            resolved[key] = registry.resolve(node, key)
        except UserError as err:
            raise UserError(f"{err}{_plugin_hint(config)}") from None
    for key, value in config.items():  # everything else: plain values only
        if key in ("model", "loss", "augment", "dataset"):
            continue
        if key == "optim":
            check_plain({k: v for k, v in value.items() if k not in ("encoder", "generator")}, "optim")
        else:
            check_plain(value, key)
    return resolved


def _plugin_hint(config: Mapping) -> str:
    wanted = config.get("plugins") or []
    missing = [m for m in wanted if isinstance(m, str) and m not in loaded_plugins()] if isinstance(wanted, list) else []
    if not missing:
        return ""
    return (f"; the checkpoint was trained with plugins=[{','.join(missing)}]: pass plugins=[{','.join(missing)}] "
            "to load it, if you trust that code")


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's contents (weights-only unpickling), its stored config checked; one-line errors."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a directory; give the path of a .ckpt file inside it")
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found; give the path of a .ckpt written by train.py")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:
        blocked = re.search(r"GLOBAL (\S+)", str(err))
        if blocked:
            raise UserError(f"refusing to load {path}: it asks to import {blocked.group(1)}, and a checkpoint may "
                            "hold only tensors and plain containers (it could run code)") from None
        raise UserError(f"cannot read checkpoint {path} (not a torch checkpoint, or corrupt); "
                        "is it a complete .ckpt written by train.py?") from None
    except Exception as err:  # truncated, empty, random bytes: whatever torch raises, one line
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise UserError(f"cannot read checkpoint {path} ({type(err).__name__}: {first}); "
                        "is it a complete .ckpt written by train.py?") from None
    config = stored_config(checkpoint, path)
    check_recipe(config)
    return checkpoint


#: arguments added to a part after checkpoints were written without them, whose default then
#: changed: (registry key, part name, argument, the value those checkpoints were trained with)
PAST_DEFAULTS = (("model", "resnet", "pooling", "sum"),)


def stored_config(checkpoint: Any, path: str | Path = "checkpoint") -> Any:
    """The config a checkpoint was trained with, written out in today's terms: an argument it predates
    gets the value it was trained with (PAST_DEFAULTS), not today's default."""
    if not (isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping)
            and isinstance(checkpoint.get("hyper_parameters"), Mapping) and "config" in checkpoint["hyper_parameters"]):
        raise UserError(f"{path} is not a checkpoint written by train.py (no state_dict and stored config)")
    config = checkpoint["hyper_parameters"]["config"]
    if not isinstance(config, Mapping):
        return config
    for key, name, arg, value in PAST_DEFAULTS:
        node = config.get(key)
        if isinstance(node, Mapping) and node.get("_name_") == name and arg not in node:
            config = {**config, key: {**node, arg: value}}
    return config


def model_from_checkpoint(checkpoint: dict, map_location: str | torch.device | None = "cpu", path: str = "checkpoint"):
    """An OGAN with the checkpoint's weights, counters and EMA, built from its checked config."""
    from ogan_pl.module import OGAN

    config = stored_config(checkpoint, path)
    check_recipe(config)
    model = OGAN(config)
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError, ValueError) as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise UserError(f"{path}: its weights do not fit the model its config describes ({first})") from None
    model.on_load_checkpoint(checkpoint)
    return model.to(map_location) if map_location is not None else model


def load_model(path: str | Path, map_location: str | torch.device | None = "cpu", plugins=()):
    """OGAN from a train.py checkpoint: `plugins` are the user's own part modules to import first."""
    load_plugins(plugins)
    return model_from_checkpoint(read_checkpoint(path), map_location, str(path))
