"""How one value is checked and how a mistake is named: types from annotations (pydantic), integer
ranges checked where they are used, plain data only, and the one "did you mean" of the package.

Every layer above uses these: the registries check a part's arguments against its constructor's
annotations (ogan_pl.registry.registries), the config model checks ogan_pl's own sections
(ogan_pl.config.schema), and Hydra's unknown-key errors get the same hint (ogan_pl.run.cli).
"""

import difflib
import functools
import inspect
import math
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from omegaconf import Container, OmegaConf
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from ogan_pl.utils.errors import UserError

NAME_KEY = "_name_"


# One declaration per range or list of choices: a part's constructor, a command's schema
# (ogan_pl.config.schema), the one-line error and `ogan-parts` all read it.
def at_least(minimum: int, note: str = "") -> Any:
    """The type of an integer >= minimum; `note` says what it counts."""
    return Annotated[
        int, Field(ge=minimum, strict=True, description=f"an integer >= {minimum}" + (f" ({note})" if note else ""))
    ]


def one_of(choices: tuple[str, ...], note: str = "") -> Any:
    """The type of one of `choices` (the tuple the code itself uses)."""
    return Annotated[
        Literal[choices], Field(description="one of: " + ", ".join(map(str, choices)) + (f" ({note})" if note else ""))
    ]


def finite(
    minimum: float | None = None, *, above: float | None = None, below: float | None = None, note: str = ""
) -> Any:
    """The type of a finite number, optionally >= minimum, > above, < below."""
    bounds = [
        f">= {minimum:g}" if minimum is not None else "",
        f"> {above:g}" if above is not None else "",
        f"< {below:g}" if below is not None else "",
    ]
    text = "a finite number" + "".join(f" {b}" for b in bounds if b).replace(
        " < ", " and < ", 1 if any(bounds[:2]) else 0
    )
    return Annotated[
        float,
        Field(ge=minimum, gt=above, lt=below, allow_inf_nan=False, description=text + (f" ({note})" if note else "")),
    ]


def non_empty(item: Any, example: str) -> Any:
    """The type of a non-empty list of `item`s."""
    return Annotated[list[item], Field(min_length=1, description=f"a non-empty list such as {example}")]


def checked_arguments(key: str):
    """Class decorator for a class that a config builds outside the registries (a callback that
    Hydra instantiates): its constructor's annotated arguments are checked on every call, as a
    registry checks a part's, one line naming `key.argument` otherwise."""

    def decorate(cls: type) -> type:
        init = cls.__init__
        signature = inspect.signature(init)
        hints = typing.get_type_hints(init, include_extras=True)

        @functools.wraps(init)
        def checked_init(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            for name, value in list(bound.arguments.items())[1:]:
                if name in hints:
                    bound.arguments[name] = check_type(_plain(value), hints[name], f"{key}.{name}")
            init(*bound.args, **bound.kwargs)

        cls.__init__ = checked_init
        return cls

    return decorate


def _plain(value: Any) -> Any:
    """A value Hydra passes (a ListConfig or DictConfig) as plain data."""
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, Container) else value


PositiveInt = at_least(1)
NonNegativeInt = at_least(0)
PositiveFinite = finite(above=0)
NonNegativeFinite = finite(0)
PLAIN_TYPES = (bool, int, float, str, type(None))

#: pydantic error type -> what the value must be (when the field gives no description of its own)
MUST_BE = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "tuple_type": "a list",
    "none_required": "null",
}


def must_be(error: dict, description: str | None = None, annotation: Any = None) -> str:
    """What a value must be, from pydantic's first error: the field's own description if it has one,
    else the choices, the bound or the type."""
    kind, ctx = error["type"], error.get("ctx") or {}
    description = description or _description(annotation)
    if description:
        return description
    if kind == "literal_error":
        return "one of: " + str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        return f"{op} {next(iter(ctx.values()), '')}"
    return MUST_BE.get(kind) or (_expected(annotation) if annotation is not None else error["msg"].lower())


def describe_type(annotation: Any) -> str:
    """What a value of this type must be, as `ogan-parts` lists it: the declaration's own
    description (its range or choices), else the type's name."""
    return _description(annotation) or _expected(annotation)


def _description(annotation: Any) -> str | None:
    """The description of an `Annotated[T, Field(description=...)]`, if any."""
    return next(
        (m.description for m in getattr(annotation, "__metadata__", ()) if getattr(m, "description", None)), None
    )


#: keys that were replaced: what to write instead
REPLACED = {"loss.corr_on": "loss.corr_factor_g (loss.corr_on=encoder is loss.corr_factor_g=0)"}


def did_you_mean(name: str, known, section: str = "") -> str:
    """`did you mean SECTION.CLOSEST? ` for a misspelt key or choice, or "" when nothing is close."""
    if f"{section}.{name}" in REPLACED:
        return f"it was replaced by {REPLACED[f'{section}.{name}']}; "
    close = difflib.get_close_matches(name, [str(k) for k in known], n=1)
    return f"did you mean {section + '.' if section else ''}{close[0]}? " if close else ""


def non_finite_float(value: Any) -> bool:
    """True if the value is, or holds, a NaN or infinite float."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(non_finite_float(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(non_finite_float(v) for v in value)
    return False


_ADAPTERS: dict[Any, TypeAdapter] = {}


def check_type(value: Any, annotation: Any, key: str) -> Any:
    """`value` checked against a type annotation (as a constructor declares it); returns it converted
    (a list for a tuple, an int for a float). NaN and infinities are refused everywhere."""
    if non_finite_float(value):
        raise UserError(f"{key}={value!r} must be a finite number")
    if annotation is Any or annotation is None:
        return value
    try:
        adapter = _ADAPTERS.get(annotation)
        if adapter is None:
            adapter = _ADAPTERS[annotation] = TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # noqa: BLE001 - an annotation pydantic cannot express: the part checks the value itself
        return value
    if isinstance(value, bool) and not _accepts_bool(adapter):
        raise UserError(f"{key}={value!r} must be {_description(annotation) or _expected(annotation)}")
    try:
        return adapter.validate_python(value)
    except ValidationError as err:
        error = err.errors()[0]
        for part in error["loc"]:  # an item of a list: name the item and its own type
            item = _item_type(annotation)
            if not isinstance(part, int) or item is None or not isinstance(value, (list, tuple)):
                break
            key, value, annotation = f"{key}[{part}]", value[part], item
        raise UserError(f"{key}={value!r} must be {must_be(error, annotation=annotation)}") from None


def _item_type(annotation: Any) -> Any:
    """X of list[X] (also inside Annotated), else None."""
    if hasattr(annotation, "__metadata__"):
        annotation = typing.get_args(annotation)[0]
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) in (list, tuple) else None


def _accepts_bool(adapter: TypeAdapter) -> bool:
    try:
        return adapter.validate_python(True, strict=True) is True
    except ValidationError:
        return False


def _expected(annotation: Any) -> str:
    annotation = getattr(annotation, "__origin__", annotation) if hasattr(annotation, "__metadata__") else annotation
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def check_plain(value: Any, key: str) -> None:
    """Refuse anything but plain data; no key may look like a Hydra instruction (`_target_`, ...)."""
    if isinstance(value, PLAIN_TYPES):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise UserError(f"{key}: key {k!r} is not a string; a config holds plain values only")
            if k.startswith("_") and k.endswith("_") and len(k) > 1:
                raise UserError(
                    f"{key}.{k}: refusing {k!r}; a config read from a file may only name registered "
                    f"parts with {NAME_KEY} at a part's own node, never call or import anything"
                )
            check_plain(v, f"{key}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_plain(v, f"{key}[{i}]")
        return
    raise UserError(
        f"{key}: refusing a value of type {type(value).__name__}; "
        "a config holds numbers, strings, booleans, null, lists and dicts only"
    )
