"""The package's layout holds: imports flow one way between its layers, nothing hides a cycle in a
function-local import, the method is pure torch, and the old module names still import."""
import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "ogan_pl"
#: lowest first; a module may import its own layer and the layers below (docs/development.md)
LAYERS = [
    ["ogan_pl.utils"],
    ["ogan_pl.parts.values", "ogan_pl.parts.registry", "ogan_pl.parts.plugins"],
    ["ogan_pl.method"],
    ["ogan_pl.models"],
    ["ogan_pl.data", "ogan_pl.metrics"],
    ["ogan_pl.parts"],  # schema, recipe, checks: the checks of a whole config
    ["ogan_pl.checkpoints", "ogan_pl.module", "ogan_pl.grids", "ogan_pl.edits", "ogan_pl.user_images", "ogan_pl"],
    ["ogan_pl.callbacks"],
    ["ogan_pl.run"],
    ["ogan_pl.tools"],
]
#: optional or slow packages imported where they are used, each with its reason in a comment
LAZY_OK = {"lmdb", "torchvision.datasets", "wandb", "matplotlib"}


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
    return {module_name(p): ast.parse(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))
            if p.name != "__main__.py"}


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
            for target in imported(node):
                if target.startswith("ogan_pl") and target != "ogan_pl" and layer(target) > layer(name):
                    wrong.append(f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_modules():
    trees = modules()
    graph = {name: {t for node in tree.body for t in imported(node) if t in trees and t != "ogan_pl"}
             for name, tree in trees.items()}
    done, on_path = set(), []

    def visit(node):
        if node in on_path:
            raise AssertionError("import cycle: " + " -> ".join(on_path[on_path.index(node):] + [node]))
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
                    assert not target.startswith(("pytorch_lightning", "lightning", "hydra", "omegaconf")), (name, target)


@pytest.mark.parametrize("old,new,name", [
    ("ogan_pl.registry", "ogan_pl.parts.registry", "ARCHITECTURES"),
    ("ogan_pl.losses", "ogan_pl.method.losses", "GANLoss"),
    ("ogan_pl.augment", "ogan_pl.method.augment", "Augment"),
    ("ogan_pl.loading", "ogan_pl.checkpoints", "read_checkpoint"),
    ("ogan_pl.errors", "ogan_pl.utils.errors", "UserError"),
])
def test_old_module_names_are_the_same_modules(old, new, name):
    """A user's plugin written against the old names registers into the same registries."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old_module = importlib.import_module(old)
    assert old_module is importlib.import_module(new)
    assert getattr(old_module, name) is getattr(importlib.import_module(new), name)
    assert old_module.__spec__.name == new
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)


def test_old_python_m_names_still_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ogan_pl.parts"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "gan_qp" in proc.stdout, proc.stderr[-2000:]
    proc = subprocess.run([sys.executable, "-W", "ignore", "-m", "ogan_pl.sweep", str(tmp_path / "missing")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "is not a directory" in proc.stderr, proc.stderr[-2000:]
