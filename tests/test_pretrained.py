"""The trained digits model in the box: it scores what docs/pretrained.md says (the project's own
metrics, as evaluate.py computes them), opens in every command that takes a checkpoint, and comes
with its ten class directions."""

import json
import re

import pytest
import torch

from ogan_pl import OGAN
from ogan_pl.checkpoints import PRETRAINED_DIR
from ogan_pl.edits import load_directions
from tests.conftest import ROOT, run_command_here

#: docs/pretrained.md's table, and how far a run may land from it (the domain classifier is retrained
#: here, so its features differ a little from one machine's thread count to another's)
DOCUMENTED = {
    "recon_classifier_accuracy": (0.901, 0.02),
    "is_classifier": (7.586, 0.3),
    "fd_classifier": (7.004, 3.0),
    "health/rho": (0.588, 0.02),
}
EVALUATE = ["metrics.names=[recon_classifier,is_classifier,fd_classifier,health]", "metrics.n_fake=2000"]


def test_the_shipped_files_are_small_enough_for_a_wheel():
    sizes = {p.name: p.stat().st_size for p in PRETRAINED_DIR.iterdir() if p.suffix in (".ckpt", ".pt")}
    assert set(sizes) == {"digits.ckpt", "digits.directions.pt"} and sum(sizes.values()) < 5e6, sizes


def test_the_docs_table_is_the_tests():
    page = (ROOT / "docs" / "pretrained.md").read_text()
    for name, (value, _) in DOCUMENTED.items():
        assert re.search(rf"\| `{re.escape(name)}` \| {value:g} \|", page), name


@pytest.mark.slow
def test_the_shipped_model_scores_what_its_docs_say(tmp_path):
    proc = run_command_here(
        tmp_path, "evaluate.py", "ckpt=pretrained:digits", *EVALUATE, "results_file=scores.jsonl", "hydra.run.dir=ev"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "scores.jsonl").read_text().splitlines()[-1])
    assert record["ckpt"] == "pretrained:digits" and record["g_iter"] == 15000
    for name, (value, tolerance) in DOCUMENTED.items():
        assert abs(record["metrics"][name] - value) <= tolerance, (name, record["metrics"][name], value)


def test_from_pretrained_is_the_shipped_checkpoint_read_safely():
    model = OGAN.from_pretrained("digits")
    assert (model.z_dim, model.g_iter, model.hparams.config["dataset"]["_name_"]) == (32, 15000, "digits")
    with pytest.raises(Exception, match=r"ckpt=pretrained:nope: no such pretrained model; shipped: pretrained:digits"):
        OGAN.from_pretrained("nope")


def test_the_ten_class_directions_come_with_it():
    directions, names, provenance = load_directions("pretrained:digits", 32)
    assert names == [f"class_mean:rest->{digit}" for digit in range(10)]
    assert torch.allclose(directions.norm(dim=1), torch.ones(10))
    assert provenance["method"] == "class_mean" and provenance["dataset"] == "digits"


def test_the_encoder_tools_take_it(tmp_path):
    (tmp_path / "mine").mkdir()
    from PIL import Image

    from ogan_pl.data import DigitsDataModule

    data = DigitsDataModule(batch_size=8)
    for i, image in enumerate(data.holdout_batch(3)["image"]):
        Image.fromarray(((image[0] + 1) * 127.5).round().byte().numpy()).save(tmp_path / "mine" / f"d{i}.png")
    invert = run_command_here(
        tmp_path, "-m", "ogan_pl.tools.invert", "ckpt=pretrained:digits", "input=mine", "output=inv", "steps=5"
    )
    assert invert.returncode == 0, invert.stderr[-2000:]
    line = json.loads((tmp_path / "inv" / "inversions.jsonl").read_text().splitlines()[0])
    assert line["ckpt"] == "pretrained:digits"
    edit = run_command_here(
        tmp_path,
        "-m",
        "ogan_pl.tools.edit",
        "ckpt=pretrained:digits",
        "directions=pretrained:digits",
        "index=7",
        "input=mine",
        "output=edits",
    )
    assert edit.returncode == 0 and (tmp_path / "edits" / "edit_class_mean_rest_to_7.png").is_file(), edit.stderr
    nope = run_command_here(tmp_path, "-m", "ogan_pl.tools.invert", "ckpt=pretrained:nope", "input=mine", "output=x")
    assert nope.returncode == 2 and "no such pretrained model" in nope.stderr and not (tmp_path / "x").exists()
