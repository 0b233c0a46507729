"""Registries of parts: a class registered under a name, built from a config node that names it.

    @ARCHITECTURES.register("dcgan")
    class DCGAN: ...

    model: {_name_: dcgan, z_dim: 128, kernel_size: 5}     # the other keys are DCGAN's arguments

A config node is turned into an object only through `Registry.build`, and only after `resolve`
has checked it: the name matches a registered part exactly (its registry name, or the exact
`module.QualName` of the registered class) before anything is imported, every other key is an
argument of that class's constructor, every value is plain data (numbers, strings, booleans,
null, and lists and dicts of them) of the type the constructor's annotation declares (ogan_pl.registry.values:
`model.z_dim=abc` is one line, not a traceback from deep inside the part). Nothing here imports a module or calls anything named by a
string: a config read from a stranger's checkpoint can only choose among registered parts.
"""

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ogan_pl.registry.plugins import load_builtins
from ogan_pl.registry.values import NAME_KEY, check_plain, check_type, did_you_mean
from ogan_pl.utils.errors import UserError


def qualified_name(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


@dataclass(frozen=True)
class Argument:
    name: str
    default: Any  # inspect.Parameter.empty when required
    annotation: Any

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass(frozen=True)
class Resolved:
    """A checked config node: the registered class and its keyword arguments (plain values)."""

    cls: type
    kwargs: dict
    key: str

    def build(self, **runtime) -> Any:
        """The part, with the arguments the code passes itself (an optimizer's `params`)."""
        return self.cls(**self.kwargs, **runtime)


class Registry:
    """Parts of one kind (architectures, losses, ...), each a class registered under a name.

    `runtime` names constructor arguments the code passes itself (an optimizer's `params`, a
    dataset's `batches_per_step`): a config may not set them.
    """

    def __init__(self, kind: str, plural: str, runtime: tuple[str, ...] = ()):
        self.kind = kind
        self.plural = plural
        self.runtime = runtime
        self._parts: dict[str, type] = {}
        self._arguments: dict[type, dict[str, Argument]] = {}

    def register(self, name: str, cls: type | None = None) -> Callable[[type], type]:
        """Decorator (or call with `cls`): register a class under `name`."""

        def add(part: type) -> type:
            known = self._parts.get(name)
            if known is not None and qualified_name(known) != qualified_name(part):
                raise ValueError(f"{self.kind} {name!r} is already registered as {qualified_name(known)}")
            self._parts[name] = part
            return part

        return add if cls is None else add(cls)

    def names(self) -> list[str]:
        load_builtins()
        return sorted(self._parts)

    def __contains__(self, name: str) -> bool:
        return self._find(name) is not None

    def _find(self, name: Any) -> type | None:
        load_builtins()
        if not isinstance(name, str):
            return None
        if name in self._parts:
            return self._parts[name]
        return next((cls for cls in self._parts.values() if qualified_name(cls) == name), None)

    def get(self, name: Any, key: str = "") -> type:
        cls = self._find(name)
        if cls is None:
            where = f"{key}: " if key else ""
            raise UserError(
                f"{where}unknown {self.kind} {name!r}; {did_you_mean(str(name), self.names())}"
                f"registered: {', '.join(self.names())} "
                f"(a part of your own: register it in a module and pass plugins=[your.module])"
            )
        return cls

    def arguments(self, cls: type) -> dict[str, Argument]:
        """The constructor arguments a config may set (from the signature; `**kwargs` follow the base class)."""
        if cls not in self._arguments:
            self._arguments[cls] = self._signature_arguments(cls)
        return self._arguments[cls]

    def _signature_arguments(self, cls: type) -> dict[str, Argument]:
        out: dict[str, Argument] = {}
        for klass in cls.__mro__:
            if klass is object or "__init__" not in vars(klass):
                continue
            params = list(inspect.signature(klass.__init__).parameters.values())[1:]
            try:
                hints = typing.get_type_hints(klass.__init__, include_extras=True)
            except Exception:  # noqa: BLE001 - an annotation that does not evaluate: that argument goes unchecked
                hints = {}
            for p in params:
                if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in self.runtime:
                    continue
                annotation = hints.get(p.name, typing.Any if p.annotation is p.empty else p.annotation)
                out.setdefault(p.name, Argument(p.name, p.default, annotation))
            if not any(p.kind == p.VAR_KEYWORD for p in params):
                break
        return out

    def resolve(self, node: Any, key: str) -> Resolved:
        """Check a config node naming a part of this registry; builds nothing."""
        if not isinstance(node, Mapping):
            raise UserError(f"{key}: expected a {self.kind} config with {NAME_KEY}: NAME, got {node!r}")
        args = dict(node)
        name = args.pop(NAME_KEY, None)
        check_plain(args, key)
        if name is None:
            raise UserError(f"{key}.{NAME_KEY} is missing: name the {self.kind} (one of {', '.join(self.names())})")
        cls = self.get(name, f"{key}.{NAME_KEY}")
        accepted = self.arguments(cls)
        for arg in args:
            if arg not in accepted:
                raise UserError(
                    f"{key}.{arg}: {self.kind} {name!r} has no argument {arg!r}; "
                    f"it takes: {', '.join(accepted) or 'none'}"
                )
        missing = [a.name for a in accepted.values() if a.required and a.name not in args]
        if missing:
            raise UserError(f"{key}.{missing[0]} is required by {self.kind} {name!r}; set {key}.{missing[0]}=...")
        args = {arg: check_type(value, accepted[arg].annotation, f"{key}.{arg}") for arg, value in args.items()}
        return Resolved(cls, args, key)

    def build(self, node: Any, key: str, **runtime) -> Any:
        return (node if isinstance(node, Resolved) else self.resolve(node, key)).build(**runtime)

    def describe(self) -> list[tuple[str, str, dict[str, Argument]]]:
        """(name, qualified class name, arguments) of every registered part."""
        load_builtins()
        return [(name, qualified_name(cls), self.arguments(cls)) for name, cls in sorted(self._parts.items())]


ARCHITECTURES = Registry("architecture", "architectures")
LOSSES = Registry("loss", "losses")
OPTIMIZERS = Registry("optimizer", "optimizers", runtime=("params",))
DATASETS = Registry("dataset", "datasets", runtime=("batches_per_step",))
METRICS = Registry("metric", "metrics")
AUGMENTS = Registry("augmentation", "augmentations")

REGISTRIES = {
    "model": ARCHITECTURES,
    "loss": LOSSES,
    "optim": OPTIMIZERS,
    "dataset": DATASETS,
    "metrics": METRICS,
    "augment": AUGMENTS,
}
