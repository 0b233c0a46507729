"""Every registered part, and where parts come from: ogan_pl's own modules, the modules a user names
in `plugins=[mylab.ogan_parts]`, and installed packages' `ogan_pl.plugins` entry points.

`ogan-parts [plugins=[mylab.ogan_parts]]` lists every part with its arguments and defaults.
Plugins come from the command line or the user's own config files, never from a checkpoint: a
checkpoint that names a plugin's part loads only when the user passes that plugin themselves.
"""

import importlib
from importlib.metadata import entry_points

from ogan_pl.utils.errors import UserError

#: ogan_pl's own parts, imported by name like a user's (so this module sits below what it loads)
BUILTIN_MODULES = (
    "ogan_pl.method.losses",
    "ogan_pl.method.augment",
    "ogan_pl.method.optimizers",
    "ogan_pl.models",
    "ogan_pl.data",
    "ogan_pl.metrics",
)
ENTRY_POINT_GROUP = "ogan_pl.plugins"

_loaded: list[str] = []


def load_builtins() -> None:
    """Import ogan_pl's own parts and the installed entry points, once per process: a registry does
    this before its first lookup, so a name is never missed for want of an import."""
    if _loaded:
        return
    _loaded.append("ogan_pl")  # first: a lookup while these import does not start them again
    for name in BUILTIN_MODULES:
        importlib.import_module(name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _import(ep.value.split(":")[0], f"the entry point {ep.name!r} of group {ENTRY_POINT_GROUP}")
        _loaded.append(ep.value.split(":")[0])


def load_plugins(modules=()) -> list[str]:
    """The user's own part modules (`plugins=[...]`), each imported once, after ogan_pl's own."""
    load_builtins()
    if isinstance(modules, str):
        modules = [modules]
    for name in modules or ():
        if not isinstance(name, str) or not name:
            raise UserError(f"plugins: {name!r} is not a module name; use plugins=[mylab.ogan_parts]")
        if name not in _loaded:
            _import(name, f"plugins=[{name}]")
            _loaded.append(name)
    return list(_loaded)


def loaded_plugins() -> list[str]:
    return [m for m in _loaded if m != "ogan_pl"]


def _import(name: str, origin: str) -> None:
    try:
        importlib.import_module(name)
    except ImportError as err:
        raise UserError(f"cannot import {name} ({origin}): {err}; install it or put it on PYTHONPATH") from None


def plugins_from_argv(argv: list[str]) -> list[str]:
    """`plugins=[a,b]` or `plugins=a` on a command line, before Hydra composes the config."""
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+") == "plugins" and value:
            return [m.strip().strip("'\"") for m in value.strip("[]").split(",") if m.strip()]
    return []
