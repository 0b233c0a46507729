"""A checkpoint written before the package was regrouped (tests/fixtures/pre_layout.ckpt, by the code
of commit 69a7abd: `python train.py dataset=shapes debug=fast train.steps=2 dataset.size=64
dataset.holdout_size=16 model.bottom_channels=16`) still loads, evaluates and resumes."""

import shutil

import torch

from ogan_pl import OGAN
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "pre_layout.ckpt"
SAME_RUN = ["dataset=shapes", "debug=fast", "dataset.size=64", "dataset.holdout_size=16", "model.bottom_channels=16"]


def test_an_old_checkpoint_loads_with_its_weights():
    model = OGAN.load_from_checkpoint(FIXTURE)
    stored = torch.load(FIXTURE, weights_only=True)
    assert model.g_iter == stored["ogan"]["g_iter"] == 2
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, stored["state_dict"][name], rtol=0, atol=0)
    x = model.sample(4, seed=0)
    assert x.shape == (4, 3, 32, 32) and torch.isfinite(x).all()


def test_an_old_checkpoint_evaluates_and_resumes(run_script, tmp_path):
    ckpt = tmp_path / "old.ckpt"
    shutil.copy(FIXTURE, ckpt)
    out = run_script("evaluate.py", f"ckpt={ckpt}", "metrics.names=[encoder]", f"hydra.run.dir={tmp_path / 'eval'}")
    assert "encoder/rho" in out.stdout
    run_script("train.py", *SAME_RUN, "train.steps=4", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'run'}")
    resumed = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["ogan"]["g_iter"] == 4
