"""Parts by name: the registries that architectures, losses, augmentations, optimizers, datasets and
metrics register into (registry.py, values.py), where parts come from (plugins.py), and the checks
of a whole config and of a checkpoint's recipe (schema.py, recipe.py, checks.py).

This file imports nothing: registry.py and values.py sit below the method (which registers into
them), while schema.py, recipe.py and checks.py sit above the parts they check (docs/development.md).
"""
