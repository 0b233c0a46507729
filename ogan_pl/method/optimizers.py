"""Optimizers by name (`optim.encoder._name_`, `optim.generator._name_`): torch's own classes, registered.

A user's optimizer is one more `OPTIMIZERS.register("name")(MyOptimizer)` in a plugin module.
"""

import torch

from ogan_pl.registry.registries import OPTIMIZERS

for _name, _cls in {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}.items():
    OPTIMIZERS.register(_name, _cls)
