"""A model's recipe: the sections of a run's config that a checkpoint stores (model, method, loss,
optimizers, data), checked once into the registered parts the model is built from.

`Recipe.check` is the one check, at the edge: a training config (ogan_pl.config.checks) and a
checkpoint's stored config (ogan_pl.checkpoints) both become a Recipe; `OGAN` takes nothing else.
A stored recipe may name only registered parts, with plain values.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ogan_pl.config.schema import RECIPE_SECTIONS, check_sections
from ogan_pl.registry.plugins import loaded_plugins
from ogan_pl.registry.registries import ARCHITECTURES, AUGMENTS, DATASETS, LOSSES, OPTIMIZERS, Resolved
from ogan_pl.registry.values import check_plain
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.nested import get_path

#: the sections of a run's config that a checkpoint stores: what rebuilds its model and data
RECIPE_KEYS = ("model", "ogan", "speed", "loss", "augment", "optim", "train", "dataset", "seed", "plugins")
#: the config nodes that name a registered part
PART_NODES = {
    ("model",): ARCHITECTURES,
    ("loss",): LOSSES,
    ("augment",): AUGMENTS,
    ("optim", "encoder"): OPTIMIZERS,
    ("optim", "generator"): OPTIMIZERS,
    ("dataset",): DATASETS,
}
#: part nodes a checkpoint may lack (written before they existed, or a model without data)
OPTIONAL_NODES = (("dataset",), ("augment",))


@dataclass(frozen=True)
class Recipe:
    """A checked recipe: `config`, the plain sections a checkpoint stores, and `parts`, each part node
    resolved against its registry ("model", "loss", "augment", "optim.encoder", "optim.generator",
    "dataset"). Made only by `Recipe.check`."""

    config: dict
    parts: dict[str, Resolved]

    @classmethod
    def check(cls, config: Any) -> "Recipe":
        """A recipe (`recipe(run_config)`, or a checkpoint's stored config), every part resolved
        against the registries; refuses anything else with one line naming the key. Imports nothing
        it names and builds nothing."""
        if not isinstance(config, Mapping):
            raise UserError(f"the stored config is a {type(config).__name__}, not a mapping")
        for key in config:
            if key not in RECIPE_KEYS:
                raise UserError(
                    f"{key}: refusing an unknown section of a stored config (expected: {', '.join(RECIPE_KEYS)})"
                )
        return cls(dict(config), _resolve(config))

    @classmethod
    def of_run(cls, config: Mapping) -> "Recipe":
        """The checked recipe of a run's whole (resolved, plain) config: its other sections are left out."""
        return cls.check(recipe(config))


def recipe(config: Mapping) -> dict:
    """The part of a run's config that a checkpoint keeps (the rest, loggers and callbacks, stays in
    the run directory's config.yaml)."""
    return {key: config[key] for key in RECIPE_KEYS if key in config}


def _resolve(stored: Mapping) -> dict[str, Resolved]:
    for key in ("model", "loss", "optim", *RECIPE_SECTIONS):
        if not isinstance(stored.get(key), Mapping):
            raise UserError(f"{key}: missing from the stored config; is this a checkpoint written by train.py?")
    if isinstance(stored.get("seed"), bool) or not isinstance(stored.get("seed"), int):
        raise UserError("seed: missing from the stored config, or not an integer")
    for key, section in RECIPE_SECTIONS.items():
        check_sections(dict(stored[key]), section, key)
    resolved = {}
    for path, registry in PART_NODES.items():
        node = get_path(stored, path)
        if node is None and path in OPTIONAL_NODES:
            continue
        key = ".".join(path)
        try:
            resolved[key] = registry.resolve(node, key)
        except UserError as err:
            raise UserError(f"{err}{_plugin_hint(stored)}") from None
    for key, value in stored.items():  # everything else: plain values only
        if key in ("model", "loss", "augment", "dataset"):
            continue
        if key == "optim":
            check_plain({k: v for k, v in value.items() if k not in ("encoder", "generator")}, "optim")
        else:
            check_plain(value, key)
    return resolved


def _plugin_hint(config: Mapping) -> str:
    wanted = config.get("plugins") or []
    missing = (
        [m for m in wanted if isinstance(m, str) and m not in loaded_plugins()] if isinstance(wanted, list) else []
    )
    if not missing:
        return ""
    return (
        f"; the checkpoint was trained with plugins=[{','.join(missing)}]: pass plugins=[{','.join(missing)}] "
        "to load it, if you trust that code"
    )
