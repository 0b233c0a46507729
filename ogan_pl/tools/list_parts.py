"""`ogan-parts [plugins=[mylab.ogan_parts]]` (or `python -m ogan_pl.tools.list_parts`): every
registered part, with its arguments, their types and defaults."""

import inspect
import sys
from typing import Any

from ogan_pl.registry.plugins import load_plugins, plugins_from_argv
from ogan_pl.registry.registries import REGISTRIES
from ogan_pl.registry.values import describe_type
from ogan_pl.run.exits import exit_with
from ogan_pl.utils.errors import UserError


def _format_default(arg) -> str:
    return "required" if arg.required else repr(arg.default)


def describe() -> str:
    lines = []
    for group, registry in REGISTRIES.items():
        lines.append(f"{registry.plural} ({group}):")
        for name, qualname, args in registry.describe():
            lines.append(f"  {name:<14} {qualname}")
            for arg in args.values():
                kind = "" if arg.annotation in (inspect.Parameter.empty, Any) else describe_type(arg.annotation)
                lines.append(f"      {arg.name}{': ' + kind if kind else ''} = {_format_default(arg)}")
    return "\n".join(lines)


def list_parts(argv: list[str]) -> int:
    try:
        load_plugins(plugins_from_argv(argv))
    except UserError as err:
        exit_with(err)
    print(describe())
    return 0


def main() -> None:
    """The `ogan-parts` console script."""
    sys.exit(list_parts(sys.argv[1:]))


if __name__ == "__main__":
    main()
