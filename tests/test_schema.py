"""Every value a user can type is checked before anything heavy starts: one line naming the key,
the bad value and what it must be (ogan_pl.config.schema, the registries' signatures, Lightning's)."""

import math
import os

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from ogan_pl.config.checks import check_training
from ogan_pl.registry.registries import Registry
from ogan_pl.registry.values import check_type
from ogan_pl.utils.errors import UserError
from tests.conftest import ROOT, run_command_here
from tests.test_cli import TINY


def composed(overrides: list[str]):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    with open_dict(cfg):
        cfg.paths = dict.fromkeys(("root_dir", "data_dir", "cache_dir", "log_dir", "output_dir"), "unused")
    return cfg


GPU_ABSENT = not torch.cuda.is_available()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optim.lr_e=abc"], "optim.lr_e='abc' must be a finite number > 0"),
        (["optim.lr=inf"], "optim.lr=inf must be a finite number"),
        (["optim.lr=nan"], "optim.lr=nan must be a finite number"),
        (["loss.corr_weight=inf"], "loss.corr_weight=inf must be a finite number"),
        (["model.z_dim=abc"], "model.z_dim='abc' must be an integer"),
        (["model.z_dim=2.5"], "model.z_dim=2.5 must be an integer"),
        (["model.bottom_channels=abc"], "model.bottom_channels='abc' must be an integer"),
        (["dataset.num_workers=abc"], "dataset.num_workers='abc' must be an integer"),
        (["dataset=shapes", "dataset.holdout_size=0"], "dataset.holdout_size=0 must be an integer >= 1"),
        (["dataset.holdout_size=-5"], "dataset.holdout_size=-5 must be an integer from 10 to 5000"),
        (["dataset=image_folder", "dataset.root="], "dataset.root is empty"),
        (
            ["dataset=image_folder", "dataset.root=/tmp", "dataset.crop_size=0"],
            "dataset.crop_size=0 must be a positive",
        ),
        (["trainer.devices=0"], "trainer.devices=0 must be a number of devices >= 1"),
        (["trainer.devices=abc"], "trainer.devices='abc' must be a number of devices >= 1"),
        (["trainer.precision=foo"], "trainer.precision='foo' must be one of: 32-true"),
        (["+trainer.devise=2"], "trainer.devise: unknown key; did you mean trainer.devices?"),
        (["+unknown.key=1"], "unknown: unknown key"),
        (["+train.step=3"], "train.step: unknown key; did you mean train.steps?"),
        (["train.steps=0"], "train.steps=0 must be a positive number of generator iterations"),
        (["train.update=both"], "train.update='both' must be one of: alternating, joint"),
        (["speed.channels_last=foo"], "speed.channels_last='foo' must be auto, true or false"),
        (["ogan.ema_decay=1"], "ogan.ema_decay=1 must be a finite number >= 0 and < 1 (0 turns EMA off)"),
        (["seed=-1"], "seed=-1 must be an integer >= 0"),
        (["resume=maybe"], "resume='maybe' must be auto"),
        pytest.param(
            ["trainer.accelerator=gpu"],
            "trainer.accelerator=gpu but this machine has no CUDA GPU",
            marks=pytest.mark.skipif(not GPU_ABSENT, reason="this machine has a GPU"),
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(overrides, message):
    with pytest.raises(UserError) as err:
        check_training(composed(overrides))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_shipped_configs_pass_the_schema():
    """Every option of every group (and every experiment) is valid under the schema it ships with."""
    from ogan_pl.config.schema import check_sections
    from ogan_pl.utils.nested import plain_config

    for group in (
        "model",
        "loss",
        "augment",
        "optim",
        "dataset",
        "trainer",
        "logger",
        "callbacks",
        "experiment",
        "debug",
        "hparams_search",
    ):
        for option in sorted((ROOT / "conf" / group).glob("*.yaml")):
            if not option.stem.startswith("_"):
                check_sections(plain_config(composed([f"{group}={option.stem}"])))


def test_a_users_part_is_typed_by_its_own_signature():
    parts = Registry("widget", "widgets")

    @parts.register("knob")
    class Knob:
        def __init__(self, turns: int = 1, gain: float = 1.0, label: str = "", steps: tuple[int, int] = (1, 2)):
            self.turns, self.gain, self.label, self.steps = turns, gain, label, steps

    assert parts.build({"_name_": "knob", "gain": 2, "steps": [3, 4]}, "widget").steps == (3, 4)
    for node, message in [
        ({"turns": "three"}, "widget.turns='three' must be an integer"),
        ({"turns": True}, "widget.turns=True must be int"),
        ({"gain": "loud"}, "widget.gain='loud' must be a number"),
        ({"gain": math.inf}, "widget.gain=inf must be a finite number"),
        ({"label": 3}, "widget.label=3 must be a string"),
    ]:
        with pytest.raises(UserError, match=message.replace("[", r"\[").replace("(", r"\(")):
            parts.resolve({"_name_": "knob", **node}, "widget")


def test_check_type_converts_what_yaml_cannot_spell():
    assert check_type([0.5, 0.9], tuple[float, float], "optim.encoder.betas") == (0.5, 0.9)
    assert check_type(1, float, "lr") == 1.0 and isinstance(check_type(1, float, "lr"), float)


@pytest.mark.parametrize(
    "script, args, message",
    [
        ("train.py", ["trainer.devise=2"], "trainer.devise: unknown key; did you mean trainer.devices?"),
        ("train.py", ["+train.step=3"], "train.step: unknown key; did you mean train.steps?"),
        ("train.py", ["callbacks.images.n_samples=0"], "callbacks.images.n_samples=0 must be an integer >= 1"),
        (
            "evaluate.py",
            ["ckpt=missing.ckpt", "metrics.n_fake=2"],
            "metrics.n_fake=2 is too few for metric is: it needs at least 10 generated images",
        ),
        ("evaluate.py", ["ckpt=missing.ckpt", "metrics.batch_size=0"], "metrics.batch_size=0 must be an integer >= 1"),
        ("evaluate.py", ["ckpt=missing.ckpt", "metrics.is.splits=0"], "metrics.is.splits=0 must be an integer >= 1"),
        (
            "evaluate.py",
            ["ckpt=missing.ckpt", "metrics.encoder.n_rho=0"],
            "metrics.encoder.n_rho=0 must be an integer >= 2",
        ),
    ],
)
def test_bad_values_on_the_command_line_are_one_line_and_exit_2(tmp_path, script, args, message):
    proc = run_command_here(tmp_path, script, *args, "hydra.run.dir=run")
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[-1].startswith("error: ") and message in lines[-1], lines[-1]


DIVERGING_LOSS = '''
import torch
from ogan_pl.method.losses import GANQP
from ogan_pl.registry.registries import LOSSES


@LOSSES.register("diverging")
class Diverging(GANQP):
    """GAN-QP whose E loss turns NaN from its 7th E update on (as a too-large learning rate would)."""

    def encoder_loss(self, s):
        loss, parts = super().encoder_loss(s)
        return (loss * float("nan") if s.step >= 6 else loss), parts
'''


def test_a_run_whose_loss_turns_nan_stops_with_one_line_and_keeps_its_finite_checkpoints(run_script, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "diverging_loss.py").write_text(DIVERGING_LOSS)
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(lib)])}
    proc = run_script(
        "train.py",
        *TINY,
        "logger=none",
        "plugins=[diverging_loss]",
        "loss._name_=diverging",
        "train.steps=12",
        "callbacks.checkpoint.every_n_steps=5",
        "trainer.log_every_n_steps=4",
        "hydra.run.dir=run",
        env=env,
        check=False,
    )
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    # the NaN appears in iteration 7; the log step at iteration 8 sees it
    assert lines[-1].startswith("error: training diverged") and "generator iteration 8" in lines[-1], lines[-1]
    assert "train/loss_e=nan" in lines[-1]
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("*.ckpt")) == ["giter_0000005.ckpt", "last.ckpt"]
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["ogan"]["g_iter"] == 5
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
