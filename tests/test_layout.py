"""The package's layout holds: every folder is one layer, imports flow one way between the layers,
nothing hides a cycle in a function-local import, and the method is pure torch."""

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "ogan_pl"
#: lowest first; a module may import its own layer and the layers below (docs/development.md)
LAYERS = [
    ["ogan_pl.utils"],
    ["ogan_pl.registry"],  # the registries, one value's check, the plugin loader
    ["ogan_pl.method"],
    ["ogan_pl.models"],
    ["ogan_pl.data", "ogan_pl.metrics"],
    ["ogan_pl.config"],  # the checks of a whole config: schemas, the recipe
    [
        "ogan_pl.checkpoints",
        "ogan_pl.module",
        "ogan_pl.grids",
        "ogan_pl.edits",
        "ogan_pl.export",
        "ogan_pl.demo",
        "ogan_pl",
    ],
    ["ogan_pl.callbacks"],
    ["ogan_pl.run"],
    ["ogan_pl.tools"],
]
#: optional or slow packages imported where they are used, each with its reason in a comment
LAZY_OK = {"lmdb", "torchvision.datasets", "wandb", "matplotlib", "onnxruntime"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(name: str) -> int:
    """The layer of a module: its longest matching prefix."""
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank is not None, name
    return rank


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}


def imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module]
    return []


def test_imports_flow_one_way_between_layers():
    wrong = []
    for name, tree in modules().items():
        for node in tree.body:
            wrong += [
                f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})"
                for target in imported(node)
                if target.startswith("ogan_pl") and target != "ogan_pl" and layer(target) > layer(name)
            ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_modules():
    trees = modules()
    graph = {
        name: {t for node in tree.body for t in imported(node) if t in trees and t != "ogan_pl"}
        for name, tree in trees.items()
    }
    done, on_path = set(), []

    def visit(node):
        if node in on_path:
            raise AssertionError("import cycle: " + " -> ".join([*on_path[on_path.index(node) :], node]))
        if node in done:
            return
        on_path.append(node)
        for nxt in graph[node]:
            visit(nxt)
        on_path.pop()
        done.add(node)

    for name in graph:
        visit(name)


def test_no_function_local_import_except_lazy_optional_packages():
    local = []
    for name, tree in modules().items():
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                local += [f"{name}: {t}" for t in imported(node) if t not in LAZY_OK]
    assert not local, local


def test_the_method_is_pure_torch():
    for name, tree in modules().items():
        if name.startswith("ogan_pl.method"):
            for node in tree.body:
                for target in imported(node):
                    assert not target.startswith(("pytorch_lightning", "lightning", "hydra", "omegaconf")), (
                        name,
                        target,
                    )


def test_a_deprecation_warning_from_ogan_pl_fails_the_tests():
    """pyproject.toml's filters: ogan_pl's own DeprecationWarnings are errors, other packages' are shown."""
    code = compile("import warnings\nwarnings.warn('old', DeprecationWarning)", "<ogan_pl module>", "exec")
    with pytest.raises(DeprecationWarning):
        exec(code, {"__name__": "ogan_pl.somewhere"})
    with pytest.warns(DeprecationWarning):
        exec(code, {"__name__": "some_other_package"})
