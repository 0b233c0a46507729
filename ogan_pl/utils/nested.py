"""Nested configs: the composed config as plain containers, and walks along a key path."""

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf


def plain_config(cfg: DictConfig) -> Any:
    """The composed config (or one of its nodes) as plain dicts and lists, interpolations resolved."""
    return OmegaConf.to_container(cfg, resolve=True)


def get_path(node: Any, path: tuple[str, ...] | str) -> Any:
    """node[path[0]][path[1]]...; None where a step is missing or not a mapping. `path`: a tuple of
    keys, or a dotted string such as "optim.encoder._name_"."""
    for key in path.split(".") if isinstance(path, str) else path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node
