"""Parts by name, the bottom of the package: the registries that architectures, losses,
augmentations, optimizers, datasets and metrics register into (registries.py), how one value is
checked and a mistake named (values.py), and where parts come from (plugins.py).

A part of your own:

    from ogan_pl.registry import ARCHITECTURES

    @ARCHITECTURES.register("mynet")
    class MyNet(Architecture): ...

then `plugins=[mylab.ogan_parts]` on the command line (docs/parts.md).
"""

from ogan_pl.registry.plugins import load_plugins
from ogan_pl.registry.registries import (
    ARCHITECTURES,
    AUGMENTS,
    DATASETS,
    LOSSES,
    METRICS,
    OPTIMIZERS,
    REGISTRIES,
    Registry,
    Resolved,
)

__all__ = [
    "ARCHITECTURES",
    "AUGMENTS",
    "DATASETS",
    "LOSSES",
    "METRICS",
    "OPTIMIZERS",
    "REGISTRIES",
    "Registry",
    "Resolved",
    "load_plugins",
]
