"""Settings chosen from the data, not its name (docs/usage.md, "Settings that follow the data").

`${data_settings:KEY}` in conf/ (model.z_dim, model.bottom_channels, model.width, optim.lr,
ogan.ema_decay, loss.corr_factor_e) resolves from dataset.resolution:

    small images (resolution <= 64): the default run's short-run settings, a quarter of the paper's width
    larger (128, 256):                 the paper's reference values

Any of them set in an experiment or on the command line replaces the rule; the paper's experiments
set theirs explicitly. `settings_line` is the one line every training run prints about them.
"""

from typing import Any

from omegaconf import DictConfig, OmegaConf

from ogan_pl.utils.errors import UserError

RESOLVER = "data_settings"
SMALL_MAX_RESOLUTION = 64

#: the keys the rule may set, as "section.key"
KEYS = ("model.z_dim", "model.bottom_channels", "model.width", "optim.lr", "ogan.ema_decay", "loss.corr_factor_e")


def is_small(resolution: int) -> bool:
    return resolution <= SMALL_MAX_RESOLUTION


def settings_for(resolution: int) -> dict[str, Any]:
    if not is_small(resolution):  # the paper's reference values
        return {
            "z_dim": 128,
            "bottom_channels": None,
            "width": 64,
            "lr": 1.0e-4,
            "ema_decay": 0.999,
            "corr_factor_e": 1.0,
        }
    return {
        "z_dim": 32,  # paper: 128; few factors, and rho of a short code trains faster
        "bottom_channels": 2 * resolution,  # paper: 8 x resolution; 1/16 of the FLOPs per image
        "width": 16,  # model=resnet: a quarter of the default 64
        "lr": 4.0e-4,  # RMSprop; paper: 1e-4, chosen for 100,000 iterations
        "ema_decay": 0.99,  # paper (256 sm): 0.999; the average must follow a short run
        "corr_factor_e": 2.0,  # paper: 1; E's lambda twice G's: less wear of the encoder in long runs
    }


def resolve(key: str, *, _root_: DictConfig) -> Any:
    """The `${data_settings:KEY}` resolver."""
    resolution = OmegaConf.select(_root_, "dataset.resolution")
    if isinstance(resolution, bool) or not isinstance(resolution, int):
        raise UserError(
            f"dataset.resolution={resolution!r} must be an integer: the model's settings are chosen from it"
        )
    settings = settings_for(resolution)
    if key not in settings:
        raise UserError(f"${{{RESOLVER}:{key}}}: no such setting; known: {', '.join(settings)}")
    return settings[key]


def _unresolved(cfg: DictConfig, dotted: str) -> Any:
    section, key = dotted.split(".")
    node = cfg.get(section)
    if not isinstance(node, DictConfig) or key not in node:
        return None
    return OmegaConf.to_container(node, resolve=False)[key]


def chosen_keys(cfg: DictConfig) -> tuple[list[str], list[str]]:
    """(keys the rule set, keys the config or command line set) among KEYS present in cfg."""
    by_rule, by_config = [], []
    for dotted in KEYS:
        raw = _unresolved(cfg, dotted)
        if raw is None and OmegaConf.select(cfg, dotted, default="absent") == "absent":
            continue
        (by_rule if isinstance(raw, str) and raw.startswith("${" + RESOLVER + ":") else by_config).append(dotted)
    return by_rule, by_config


def _show(cfg: DictConfig, keys: list[str]) -> str:
    return " ".join(f"{k}={OmegaConf.select(cfg, k)}" for k in keys)


def settings_line(cfg: DictConfig, train_images: int | None = None) -> str:
    """What the run's size-dependent settings are and why, in one line."""
    res, channels = cfg.dataset.resolution, cfg.dataset.get("channels")
    data = f"{res} px, {channels} channel{'s' if channels != 1 else ''}"
    if train_images is not None:
        data += f", {train_images:,} training images"
    by_rule, by_config = chosen_keys(cfg)
    line = f"settings: {data}"
    if by_rule:
        why = "the small-image settings (resolution <=" if is_small(res) else "the paper's settings (resolution >"
        line += f" -> {why} {SMALL_MAX_RESOLUTION}): {_show(cfg, by_rule)}"
    if by_config:
        line += f"; set by the config or command line: {_show(cfg, by_config)}"
    return line + " (docs/usage.md, 'Settings that follow the data')"
