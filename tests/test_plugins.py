"""A researcher's own parts: one class each in their own package, named on the command line."""

import json
import os
import textwrap
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, run_in

PLUGIN = '''
"""A user's own O-GAN parts: an architecture, a loss, a dataset and a metric."""
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ogan_pl.data import ImageDataModule
from ogan_pl.data.arrays import ArrayImages
from ogan_pl.method.losses import FGHLoss
from ogan_pl.metrics import Metric
from ogan_pl.models import Architecture
from ogan_pl.registry.registries import ARCHITECTURES, DATASETS, LOSSES, METRICS


@ARCHITECTURES.register("tiny_mlp")
class TinyMLP(Architecture):
    def __init__(self, resolution: int, channels: int, z_dim: int = 8, hidden: int = 32):
        super().__init__(resolution, channels, z_dim)
        self.hidden = hidden
        self.pixels = channels * resolution * resolution

    def encoder(self):
        return nn.Sequential(nn.Flatten(), nn.Linear(self.pixels, self.hidden), nn.LeakyReLU(0.2),
                             nn.Linear(self.hidden, self.z_dim))

    def generator(self):
        return nn.Sequential(nn.Linear(self.z_dim, self.hidden), nn.ReLU(), nn.Linear(self.hidden, self.pixels),
                             nn.Tanh(), nn.Unflatten(1, (self.channels, self.resolution, self.resolution)))


@LOSSES.register("soft_hinge")
class SoftHinge(FGHLoss):
    def f(self, d_real):
        return F.softplus(1 - d_real)

    def g(self, d_fake):
        return F.softplus(1 + d_fake)

    def h(self, d_fake):
        return -d_fake


@DATASETS.register("stripes")
class Stripes(ImageDataModule):
    def __init__(self, size: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def build(self):
        rng = np.random.default_rng(self.seed)
        n, r = self.size + self.holdout_size, self.resolution
        period = rng.integers(2, 6, size=n)
        cols = np.arange(r)
        rows = (cols[None, :] // period[:, None]) % 2 * 255
        images = np.repeat(np.repeat(rows[:, None, None, :], r, axis=2), self.channels, axis=1).astype(np.uint8)
        images = torch.from_numpy(images)
        return ArrayImages(images, range(self.size)), ArrayImages(images, range(self.size, n))


@METRICS.register("mean_brightness")
class MeanBrightness(Metric):
    higher_is_better = ("mean_brightness",)

    def __init__(self, n: int = 16):
        self.n = n

    def compute(self, ctx, shared):
        images = ctx.model.sample(self.n, seed=ctx.seed, use_ema=ctx.use_ema)
        return {"mean_brightness": images.mean().item()}, {"n_brightness": self.n}
'''

CONFIGS = {
    "model/tiny_mlp.yaml": """
        _name_: tiny_mlp
        resolution: ${dataset.resolution}
        channels: ${dataset.channels}
        z_dim: 8
        hidden: 32
    """,
    "dataset/stripes.yaml": """
        defaults:
          - _loader
          - _self_
        _name_: stripes
        size: 64
        resolution: 16
        channels: 1
        batch_size: 8
        holdout_size: 16
        num_workers: 0
    """,
}


@pytest.fixture
def plugin(tmp_path) -> tuple[Path, dict]:
    """The user's package `mylab_parts` and a config folder of theirs, importable from `lib/`."""
    lib = tmp_path / "lib"
    (lib / "mylab_parts").mkdir(parents=True)
    (lib / "mylab_parts" / "__init__.py").write_text(PLUGIN)
    for name, text in CONFIGS.items():
        path = tmp_path / "myconf" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(lib)])}
    return tmp_path, env


def test_plugin_parts_train_evaluate_and_are_listed(plugin):
    tmp_path, env = plugin
    listing = run_in(tmp_path, "-m", "ogan_pl.tools.list_parts", "plugins=[mylab_parts]", env=env)
    for name in ("tiny_mlp", "soft_hinge", "stripes", "mean_brightness", "hidden: int = 32"):
        assert name in listing.stdout, name

    run_in(
        tmp_path,
        "train.py",
        "plugins=[mylab_parts]",
        f"hydra.searchpath=[file://{tmp_path / 'myconf'}]",
        "model=tiny_mlp",
        "dataset=stripes",
        "loss._name_=soft_hinge",
        "train.steps=3",
        "logger=none",
        "callbacks.images.every_n_steps=3",
        "hydra.run.dir=run",
        env=env,
    )
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    config = ckpt["hyper_parameters"]["config"]
    assert config["model"]["_name_"] == "tiny_mlp" and config["dataset"]["_name_"] == "stripes"
    assert config["loss"]["_name_"] == "soft_hinge" and config["plugins"] == ["mylab_parts"]
    assert ckpt["ogan"]["g_iter"] == 3 and (tmp_path / "run" / "images" / "samples_0000003.png").is_file()

    # the checkpoint names the plugin's parts: without the plugin, one line that says which to pass
    proc = run_in(
        tmp_path,
        "evaluate.py",
        "ckpt=run/checkpoints/last.ckpt",
        "metrics.names=[encoder]",
        "hydra.run.dir=ev0",
        env=env,
        check=False,
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "'tiny_mlp'" in last and "plugins=[mylab_parts]" in last, proc.stderr[-2000:]

    run_in(
        tmp_path,
        "evaluate.py",
        "ckpt=run/checkpoints/last.ckpt",
        "plugins=[mylab_parts]",
        "metrics.names=[mean_brightness,encoder]",
        "metrics.encoder.n_rho=32",
        "hydra.run.dir=ev1",
        env=env,
    )
    record = json.loads((tmp_path / "run" / "checkpoints" / "metrics.jsonl").read_text().splitlines()[-1])
    assert -1 <= record["metrics"]["mean_brightness"] <= 1 and "recon/psnr" in record["metrics"]
    assert record["protocol"]["n_brightness"] == 16


def test_entry_point_plugins_are_found_without_naming_them(plugin):
    """An installed package's `ogan_pl.plugins` entry point registers its parts in every run."""
    tmp_path, env = plugin
    dist = tmp_path / "lib" / "mylab_parts-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mylab-parts\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ogan_pl.plugins]\nmylab = mylab_parts\n")
    listing = run_in(tmp_path, "-m", "ogan_pl.tools.list_parts", env=env)
    assert "tiny_mlp" in listing.stdout and "mean_brightness" in listing.stdout


def test_missing_plugin_module_is_one_line(plugin):
    tmp_path, env = plugin
    proc = run_in(tmp_path, "train.py", "plugins=[no_such_lab]", "hydra.run.dir=run", env=env, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot import no_such_lab" in proc.stderr.strip().splitlines()[-1]


def test_a_config_naming_an_unregistered_part_is_one_line(run_script):
    proc = run_script("train.py", "model._name_=resnet9000", "hydra.run.dir=run", check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "model._name_: unknown architecture 'resnet9000'" in last and "dcgan" in last
    proc = run_script("train.py", "+model.depth=3", "hydra.run.dir=run", check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "model.depth: architecture 'dcgan' has no argument 'depth'" in last
