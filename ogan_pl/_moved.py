"""Module names from before the package was regrouped (docs/development.md, "Moved modules").

`from ogan_pl.registry import ARCHITECTURES` in a user's plugin, `python -m ogan_pl.bench` in a
script, and every other old name keep working: the old name is the same module object as the new
one (one registry, one set of parts), with a DeprecationWarning naming the new name.
"""
import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "ogan_pl.augment": "ogan_pl.method.augment",
    "ogan_pl.ema": "ogan_pl.method.ema",
    "ogan_pl.losses": "ogan_pl.method.losses",
    "ogan_pl.optimizers": "ogan_pl.method.optimizers",
    "ogan_pl.models.head": "ogan_pl.method.head",
    "ogan_pl.registry": "ogan_pl.parts.registry",
    "ogan_pl.schema": "ogan_pl.parts.schema",
    "ogan_pl.config": "ogan_pl.parts.checks",
    "ogan_pl.loading": "ogan_pl.checkpoints",
    "ogan_pl.resume": "ogan_pl.checkpoints",
    "ogan_pl.io": "ogan_pl.utils.io",
    "ogan_pl.console": "ogan_pl.utils.console",
    "ogan_pl.distributed": "ogan_pl.utils.distributed",
    "ogan_pl.stopping": "ogan_pl.utils.stopping",
    "ogan_pl.errors": "ogan_pl.utils.errors",
    "ogan_pl.cli": "ogan_pl.run.cli",
    "ogan_pl.train": "ogan_pl.run.train",
    "ogan_pl.evaluate": "ogan_pl.run.evaluate",
    "ogan_pl.rundir": "ogan_pl.run.rundir",
    "ogan_pl.sweep": "ogan_pl.tools.sweep_summary",
    "ogan_pl.classifier": "ogan_pl.tools.train_classifier",
    "ogan_pl.metrics.classifier": "ogan_pl.metrics.classifier_metrics",
    "ogan_pl.bench": "ogan_pl.tools.bench",
    "ogan_pl.bench_short_runs": "ogan_pl.tools.bench_short_runs",
    "ogan_pl.data.bench": "ogan_pl.tools.data_bench",
    "ogan_pl.data.decoded": "ogan_pl.data.raw_images",
}
#: `ogan_pl.parts` is now a package: its old module's functions are in ogan_pl.parts.plugins, and
#: `python -m ogan_pl.parts` lists the parts as before (ogan_pl/parts/__main__.py)


class _MovedLoader(importlib.abc.Loader):
    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        module = importlib.import_module(self.new)
        self._spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self._spec  # the import machinery set the old name's spec on the shared module

    def get_code(self, fullname):  # `python -m OLD_NAME` runs the new module as __main__
        return importlib.util.find_spec(self.new).loader.get_code(self.new)


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = MOVED.get(fullname)
        if new is None:
            return None
        warnings.warn(f"{fullname} moved to {new}", DeprecationWarning, stacklevel=2)
        return importlib.util.spec_from_loader(fullname, _MovedLoader(new))


def install() -> None:
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
