"""Config composition details users rely on."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from ogan_pl.run.setup import register_resolvers
from tests.conftest import ROOT

register_resolvers()  # as every command does before it composes the config


def wandb_offline() -> bool:
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config")
    return OmegaConf.select(cfg, "logger.wandb.offline")


@pytest.mark.parametrize("mode,offline", [(None, True), ("offline", True), ("online", False)])
def test_wandb_is_offline_unless_the_user_opts_in(monkeypatch, mode, offline):
    if mode is None:
        monkeypatch.delenv("WANDB_MODE", raising=False)
    else:
        monkeypatch.setenv("WANDB_MODE", mode)
    assert wandb_offline() is offline


def test_every_config_group_option_composes_and_names_registered_parts():
    """Every option of every group composes, and every part it names passes the registry checks
    (check_parts: registered name, known arguments, the architecture's own rules)."""
    from ogan_pl.config.checks import check_parts

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        for group in (
            "model",
            "loss",
            "augment",
            "optim",
            "dataset",
            "trainer",
            "logger",
            "callbacks",
            "metrics",
            "experiment",
            "debug",
        ):
            for option in sorted((ROOT / "conf" / group).glob("*.yaml")):
                if option.stem.startswith("_"):  # a base of the group's options
                    continue
                cfg = compose("config", overrides=[f"{group}={option.stem}"], return_hydra_config=False)
                with open_dict(cfg):
                    cfg.paths = dict.fromkeys(("root_dir", "data_dir", "cache_dir", "log_dir", "output_dir"), "unused")
                check_parts(cfg)
                assert cfg.train.steps >= 1, (group, option.stem)
        for name in ("evaluate", "bench"):
            assert compose(name, overrides=["ckpt=x"] if name == "evaluate" else []).task_name == name


def _python_defaults(cls) -> dict:
    import inspect

    out = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass) and klass is not object:
            for p in list(inspect.signature(klass.__init__).parameters.values())[1:]:
                if p.default is not inspect.Parameter.empty:
                    out[p.name] = p.default
    return out


@pytest.mark.parametrize(
    "group,option",
    [
        ("model", "dcgan"),
        ("loss", "gan_qp"),
        ("loss", "hinge"),
        ("loss", "wgan_gp"),
        ("loss", "nsgan"),
        ("loss", "lsgan"),
        ("loss", "rpgan"),
        ("model", "resnet"),
        ("augment", "diffaug"),
        ("dataset", "shapes"),
        ("dataset", "image_folder"),
        ("dataset", "mnist"),
        ("dataset", "cifar10"),
        ("callbacks", "default"),
        ("callbacks", "fid"),
        ("metrics", "default"),
    ],
)
def test_python_defaults_agree_with_the_yaml(group, option):
    """A part's base YAML and its class's constructor defaults say the same thing (no second truth):
    every literal value in the YAML equals the Python default where the class has one."""
    import importlib

    from ogan_pl.registry.plugins import load_plugins
    from ogan_pl.registry.registries import REGISTRIES

    load_plugins()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        # on shapes: the default dataset (digits) brings its own tuned model settings (conf/tuned/)
        cfg = compose("config", overrides=[f"{group}={option}"] + (["dataset=shapes"] if group != "dataset" else []))
    node = OmegaConf.to_container(cfg[group], resolve=False)
    if group == "metrics":  # each metric's options node
        from ogan_pl.metrics.domain_classifier import ClassifierSpec

        nodes = {
            name: (REGISTRIES["metrics"].get(name), node[name]) for name in ("kid", "is", "encoder", "kid_classifier")
        }
        nodes["classifier"] = (ClassifierSpec, node["classifier"])
    elif group == "callbacks":
        nodes = {}
        for key, sub in node.items():
            if key == "quality":  # a second preset of MetricsCallback: callbacks.fid is its reference node
                continue
            module, _, name = sub["_target_"].rpartition(".")
            nodes[key] = (getattr(importlib.import_module(module), name), sub)
    else:
        nodes = {option: (REGISTRIES[group].get(node["_name_"]), node)}
    checked = 0
    for key, (cls, values) in nodes.items():
        defaults = _python_defaults(cls)
        for arg, value in values.items():
            if arg.startswith("_") or arg not in defaults or (isinstance(value, str) and "${" in value):
                continue
            default = defaults[arg]
            assert (list(default) if isinstance(default, tuple) else default) == value, (key, arg, value, default)
            checked += 1
    assert checked >= 1
