"""Config composition details users rely on."""
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import ogan_pl.config  # noqa: F401  registers the resolvers, as train.py does

from tests.conftest import ROOT


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


def test_every_config_group_option_composes():
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        for group in ("model", "loss", "optim", "dataset", "trainer", "logger", "callbacks", "metrics", "experiment",
                      "debug"):
            for option in sorted((ROOT / "conf" / group).glob("*.yaml")):
                cfg = compose("config", overrides=[f"{group}={option.stem}"])
                OmegaConf.to_container(cfg.model, resolve=True)
                assert cfg.train.steps >= 1, (group, option.stem)
        for name in ("evaluate", "bench"):
            assert compose(name, overrides=["ckpt=x"] if name == "evaluate" else []).task_name == name
