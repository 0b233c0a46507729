"""How one value is checked and how a mistake is named: types from annotations (pydantic), integer
ranges checked where they are used, plain data only, and the one "did you mean" of the package.

Every layer above uses these: the registries check a part's arguments against its constructor's
annotations (ogan_pl.parts.registry), the config model checks ogan_pl's own sections
(ogan_pl.parts.schema), and Hydra's unknown-key errors get the same hint (ogan_pl.run.cli).
"""
import difflib
import math
from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from ogan_pl.utils.errors import UserError

NAME_KEY = "_name_"
PLAIN_TYPES = (bool, int, float, str, type(None))

#: pydantic error type -> what the value must be (when the field gives no description of its own)
MUST_BE = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list", "dict_type": "a mapping", "tuple_type": "a list",
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


def _description(annotation: Any) -> str | None:
    """The description of an `Annotated[T, Field(description=...)]`, if any."""
    return next((m.description for m in getattr(annotation, "__metadata__", ()) if getattr(m, "description", None)),
                None)


#: keys that were replaced: what to write instead
REPLACED = {"loss.corr_on": "loss.corr_factor_g (loss.corr_on=encoder is loss.corr_factor_g=0)"}


def did_you_mean(name: str, known, section: str = "") -> str:
    """`did you mean SECTION.CLOSEST? ` for a misspelt key or choice, or "" when nothing is close."""
    if f"{section}.{name}" in REPLACED:
        return f"it was replaced by {REPLACED[f'{section}.{name}']}; "
    close = difflib.get_close_matches(name, [str(k) for k in known], n=1)
    return f"did you mean {section + '.' if section else ''}{close[0]}? " if close else ""


def check_int(key: str, value: Any, minimum: int) -> int:
    """A value that must be an integer >= minimum, checked where it is used (a range that is not in
    the type): one line naming the key otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{key}={value!r} must be an integer >= {minimum}")
    return value


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
            adapter = _ADAPTERS[annotation] = TypeAdapter(annotation,
                                                          config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # an annotation pydantic cannot express: the part checks the value itself
        return value
    if isinstance(value, bool) and not _accepts_bool(adapter):
        raise UserError(f"{key}={value!r} must be {_description(annotation) or _expected(annotation)}")
    try:
        return adapter.validate_python(value)
    except ValidationError as err:
        raise UserError(f"{key}={value!r} must be {must_be(err.errors()[0], annotation=annotation)}") from None


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
                raise UserError(f"{key}.{k}: refusing {k!r}; a config read from a file may only name registered "
                                f"parts with {NAME_KEY} at a part's own node, never call or import anything")
            check_plain(v, f"{key}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_plain(v, f"{key}[{i}]")
        return
    raise UserError(f"{key}: refusing a value of type {type(value).__name__}; "
                    "a config holds numbers, strings, booleans, null, lists and dicts only")
