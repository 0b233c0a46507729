"""Settings that follow the data (ogan_pl/parts/data_settings.py): the same for a folder of 32 px
images as for the built-in digits, the paper's reference values in the paper's experiments, and the
one line a run prints about them."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ogan_pl.config.data_settings import chosen_keys, settings_line
from tests.conftest import ROOT

SIZED = ("model", "optim", "ogan", "loss", "train")


def composed(*overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def sections(cfg) -> dict:
    return {key: OmegaConf.to_container(cfg[key], resolve=True) for key in SIZED}


@pytest.mark.parametrize("model", ["dcgan", "dcgan_sm", "resnet"])
def test_a_32px_image_folder_gets_the_settings_of_the_built_in_digits(model):
    digits = composed(f"model={model}")
    folder = composed(
        f"model={model}",
        "dataset=image_folder",
        "dataset.root=my_digits",
        "dataset.resolution=32",
        "dataset.channels=1",
    )
    assert sections(folder) == sections(digits)
    got = sections(digits)
    assert (got["model"]["z_dim"], got["optim"]["lr"], got["ogan"]["ema_decay"]) == (32, 4e-4, 0.99)
    assert got["optim"]["encoder"]["lr"] == got["optim"]["generator"]["lr"] == 4e-4
    width = ("width", 16) if model == "resnet" else ("bottom_channels", 64)
    assert got["model"][width[0]] == width[1]


def test_the_rule_follows_the_resolution_not_the_name():
    at64 = sections(composed("dataset=image_folder", "dataset.root=x"))  # image_folder's 64 px
    assert (at64["model"]["bottom_channels"], at64["model"]["z_dim"], at64["optim"]["lr"]) == (128, 32, 4e-4)
    at128 = sections(composed("dataset=image_folder", "dataset.root=x", "dataset.resolution=128"))
    assert (
        at128["model"]["bottom_channels"],
        at128["model"]["z_dim"],
        at128["optim"]["lr"],
        at128["ogan"]["ema_decay"],
    ) == (None, 128, 1e-4, 0.999)
    shapes = sections(composed("dataset=shapes"))
    assert {k: shapes["model"][k] for k in ("z_dim", "bottom_channels")} == {"z_dim": 32, "bottom_channels": 64}


#: the paper's scripts (docs/method.md, "Reference architectures"): what each experiment must resolve to
PAPER = {
    "resolution": 128,
    "batch": 64,
    "z_dim": 128,
    "lr": 1e-4,
    "ema": 0.999,
    "lambda": 0.5,
    "steps": 100000,
    "model": "dcgan",
    "kernel": 5,
    "self_modulated": False,
}


@pytest.mark.parametrize(
    "experiment, reference",
    [
        ("celeba_hq_128", PAPER),
        ("ffhq_128", PAPER),
        ("lsun_church_128", PAPER),
        ("lsun_bedroom_128", PAPER),
        (
            "celeba_hq_256_sm",
            {
                **PAPER,
                "resolution": 256,
                "batch": 48,
                "z_dim": 256,
                "lambda": 1.0,
                "steps": 150000,
                "model": "dcgan",
                "kernel": 4,
                "self_modulated": True,
            },
        ),
    ],
)
def test_the_papers_experiments_keep_the_reference_values(experiment, reference):
    cfg = composed(f"experiment={experiment}")
    c = sections(cfg)  # not dataset: its root is under hydra's run dir, set only in a run
    model, optim, loss = c["model"], c["optim"], c["loss"]
    assert cfg.dataset.resolution == reference["resolution"] and cfg.dataset.batch_size == reference["batch"]
    assert model["_name_"] == reference["model"] and model["z_dim"] == reference["z_dim"]
    assert model["bottom_channels"] is None and model["kernel_size"] == reference["kernel"]
    assert model["self_modulated"] is reference["self_modulated"]
    for opt in (optim["encoder"], optim["generator"]):
        assert opt == {"_name_": "rmsprop", "lr": reference["lr"], "alpha": 0.99, "eps": 1e-7}
    assert c["ogan"]["ema_decay"] == reference["ema"] and c["ogan"]["disc_head"] == "avg"
    assert c["ogan"]["recon_scale"] == 0.9 and c["train"]["steps"] == reference["steps"]
    assert loss["_name_"] == "gan_qp" and loss["corr_weight"] == reference["lambda"]
    assert (loss["corr_type"], loss["corr_warmup"], loss["corr_every"]) == ("pearson", 0, 1)
    assert (loss["corr_factor_e"], loss["corr_factor_g"]) == (1.0, 1.0)
    # and they hold their z, lr and EMA themselves: a change to the rule cannot move them
    _by_rule, by_config = chosen_keys(cfg)
    assert {"model.z_dim", "optim.lr", "ogan.ema_decay", "loss.corr_factor_e"} <= set(by_config)


def test_settings_line_says_what_was_chosen_and_why():
    line = settings_line(composed(), train_images=9000)
    assert line.startswith(
        "settings: 32 px, 1 channel, 9,000 training images -> the small-image settings "
        "(resolution <= 64): model.z_dim=32 model.bottom_channels=64 optim.lr=0.0004 "
        "ogan.ema_decay=0.99"
    )
    assert "set by the config" not in line
    line = settings_line(composed("model.z_dim=64", "dataset=shapes"))
    assert "3 channels -> the small-image settings" in line
    assert "set by the config or command line: model.z_dim=64" in line
    assert "model.z_dim=32" not in line
    line = settings_line(composed("experiment=lsun_church_128"))
    assert "-> the paper's settings (resolution > 64): model.bottom_channels=None" in line
    assert "set by the config or command line: model.z_dim=128 optim.lr=0.0001 ogan.ema_decay=0.999" in line
