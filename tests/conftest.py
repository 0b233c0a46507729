import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def tiny_config(**overrides) -> dict:
    """A complete resolved config (plain dicts, as stored in checkpoints) for a tiny CPU model."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    args = [f"{k}={v}" for k, v in overrides.items()]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["model.bottom_channels=32", "model.z_dim=16",
                                           "dataset.batch_size=8", "logger=none", *args])
    with open_dict(cfg):
        cfg.paths = {"output_dir": "unused"}
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture
def make_model():
    from ogan_pl import OGAN

    def make(seed: int = 0, **overrides) -> OGAN:
        torch.manual_seed(seed)
        return OGAN(tiny_config(**overrides))

    return make


@pytest.fixture
def run_script(tmp_path):
    """Run train.py / evaluate.py as a user would, W&B offline under tmp_path."""

    def run(script: str, *args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path),
               "WANDB_CONFIG_DIR": str(tmp_path / "wandb_config"), "WANDB_CACHE_DIR": str(tmp_path / "wandb_cache"),
               "WANDB_DATA_DIR": str(tmp_path / "wandb_data"), "WANDB_SILENT": "true",
               "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{script} {' '.join(args)} exited {proc.returncode}\n"
                                 f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-5000:]}")
        return proc

    return run
