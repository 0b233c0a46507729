"""train.py and evaluate.py end to end, run as a user runs them (subprocess, CPU, tiny configs)."""

import csv
import importlib.util
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from tests.conftest import ROOT, run_command_here
from tests.helpers import read_wandb_history

TINY = [
    "dataset=shapes",
    "~callbacks.quality",
    "model.bottom_channels=32",
    "model.z_dim=16",
    "dataset.batch_size=8",
    "dataset.size=64",
    "dataset.holdout_size=16",
    "train.steps=4",
    "callbacks.images.every_n_steps=2",
    "callbacks.checkpoint.every_n_steps=2",
    "trainer.log_every_n_steps=1",
]


def read_csv_metrics(run: Path) -> list[dict]:
    """The CSV logger's rows; a resumed run adds a version_N folder, read in order."""
    paths = sorted(run.glob("csv/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    assert paths, f"no CSV metrics under {run}"
    rows = []
    for path in paths:
        with open(path) as f:
            rows += list(csv.DictReader(f))
    return rows


def wandb_history(run: Path) -> list[dict]:
    (run_file,) = run.glob("wandb/offline-run-*/run-*.wandb")
    return read_wandb_history(run_file)


def test_train_default_logger_writes_checkpoints_grids_and_offline_wandb(run_script, tmp_path):
    run_script("train.py", *TINY, "hydra.run.dir=run")
    run = tmp_path / "run"
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["giter_0000002.ckpt", "giter_0000004.ckpt", "last.ckpt"]
    for name in ("samples", "reconstructions", "interpolations"):
        for step in (2, 4):
            assert (run / "images" / f"{name}_{step:07d}.png").is_file()
    assert Image.open(run / "images" / "samples_0000004.png").size == (8 * 66 + 2, 8 * 66 + 2)  # 32 px upscaled to 64
    resolved = (run / "config.yaml").read_text()
    assert "${" not in resolved and "steps: 4" in resolved
    (wandb_run,) = (run / "wandb").glob("offline-run-*")
    assert list(wandb_run.glob("*.wandb")), "no offline W&B run file"
    media = list(wandb_run.glob("files/media/images/images/*.png"))
    assert len(media) == 6, media  # 3 grids x 2 intervals logged with log_image
    image_steps = [r["trainer/global_step"] for r in wandb_history(run) if "images/samples/filenames" in r]
    assert image_steps == [2, 4]


@pytest.mark.parametrize(
    "overrides",
    [
        ["loss=hinge"],
        ["loss=wgan_gp"],
        ["loss=nsgan", "loss.r1_gamma=1.0"],
        ["loss=lsgan"],
        ["loss=rpgan"],
        ["model=dcgan_sm"],
        ["ogan.disc_head=linear", "optim=adam"],
        ["train.update=joint"],
        ["train.n_critic=2", "ogan.ema_decay=0"],
    ],
    ids=lambda o: ",".join(o),
)
def test_train_variants(run_script, tmp_path, overrides):
    """Each loss, model and update scheme end to end: checkpoint, grids, and an offline W&B run."""
    run_script("train.py", *TINY, "hydra.run.dir=run", *overrides)
    run = tmp_path / "run"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "images").glob("*_0000004.png"))) == 3
    history = wandb_history(run)
    loss_key = "train/loss" if "train.update=joint" in overrides else "train/loss_e"
    rows = [r for r in history if loss_key in r]
    assert [r["trainer/global_step"] for r in rows] == [1, 2, 3, 4]  # x-axis: generator iterations
    for row in rows:
        for key in ("train/rho", "train/d_real", "train/d_fake", "train/penalty", "progress/kimg"):
            assert math.isfinite(row[key]), key
        assert math.isfinite(row[loss_key])
    assert rows[-1]["progress/kimg"] == pytest.approx(4 * 8 * (2 if "train.n_critic=2" in overrides else 1) / 1000)
    assert any("images/samples/filenames" in r for r in history)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    per_iter = 2 if "train.update=joint" in overrides else (3 if "train.n_critic=2" in overrides else 2)
    assert ckpt["ogan"]["g_iter"] == 4 and ckpt["global_step"] == 4 * per_iter
    assert ckpt["ogan"]["images_seen"] == 4 * 8 * (2 if "train.n_critic=2" in overrides else 1)
    assert any(k.startswith("G_ema.") for k in ckpt["state_dict"]) == ("ogan.ema_decay=0" not in overrides)


def test_csv_logger_uses_generator_iterations(run_script, tmp_path):
    run_script("train.py", *TINY, "logger=csv", "hydra.run.dir=run")
    rows = [r for r in read_csv_metrics(tmp_path / "run") if r.get("train/loss_e")]
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(math.isfinite(float(r["train/loss_g"])) for r in rows)


def test_a_run_without_the_wandb_logger_never_imports_wandb(run_script, tmp_path):
    """logger=csv/none on a machine where wandb cannot be imported: the run ends with its result."""
    (tmp_path / "blocked" / "wandb").mkdir(parents=True)
    (tmp_path / "blocked" / "wandb" / "__init__.py").write_text("raise ImportError('wandb blocked by the test')\n")
    path = os.pathsep.join([str(tmp_path / "blocked"), str(ROOT)])
    run_script("train.py", *TINY, "logger=csv", "hydra.run.dir=run", env={"PYTHONPATH": path})
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "finished"


def test_resume_restores_counter_ema_and_optimizer_state(run_script, tmp_path):
    run_script("train.py", *TINY, "logger=none", "train.steps=2", "hydra.run.dir=first")
    ckpt_path = tmp_path / "first" / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt_path, weights_only=True)
    record = tmp_path / "state_at_start.pt"
    run_script(
        "train.py",
        *TINY,
        "logger=csv",
        "hydra.run.dir=second",
        f"ckpt_path={ckpt_path}",
        "+callbacks.record._target_=tests.helpers.RecordStateAtStart",
        f"+callbacks.record.path={record}",
    )
    restored = torch.load(record, weights_only=True)
    assert restored["g_iter"] == saved["ogan"]["g_iter"] == 2
    assert restored["images_seen"] == saved["ogan"]["images_seen"]
    assert restored["global_step"] == saved["global_step"] == 4
    ema_keys = [k for k in saved["state_dict"] if "_ema." in k]
    assert ema_keys
    for key, value in saved["state_dict"].items():
        assert torch.equal(restored["state_dict"][key], value), key
    for got, want in zip(restored["optimizer_states"], saved["optimizer_states"], strict=True):
        for pid, state in want["state"].items():
            for name, tensor in state.items():
                assert torch.equal(torch.as_tensor(got["state"][pid][name]), torch.as_tensor(tensor)), (pid, name)
    final = torch.load(tmp_path / "second" / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["ogan"]["g_iter"] == 4 and final["global_step"] == 8
    steps = sorted({int(r["step"]) for r in read_csv_metrics(tmp_path / "second") if r.get("train/loss_e")})
    assert steps == [3, 4]  # the x-axis continues from the saved generator iteration


def test_evaluate_reproduces_the_training_grids(run_script, tmp_path):
    run_script("train.py", *TINY, "logger=none", "hydra.run.dir=run")
    proc = run_script(
        "evaluate.py",
        "ckpt=run/checkpoints/last.ckpt",
        "grids=true",
        "metrics.names=[encoder]",
        "metrics.encoder.n_rho=64",
        "metrics.encoder.n_probe_train=32",
        "hydra.run.dir=eval",
    )
    assert "samples:" in proc.stdout and "recon/psnr" in proc.stdout
    for name in ("samples", "reconstructions", "interpolations"):
        from_eval = np.asarray(Image.open(tmp_path / "eval" / f"{name}.png"))
        from_train = np.asarray(Image.open(tmp_path / "run" / "images" / f"{name}_0000004.png"))
        assert np.array_equal(from_eval, from_train), name


def test_multirun_gives_one_wandb_run_per_job(run_script, tmp_path):
    run_script("train.py", "-m", *TINY, "train.steps=2", "loss.corr_weight=0,0.5", "hydra.sweep.dir=sweep")
    runs = sorted((tmp_path / "sweep").glob("*/wandb/offline-run-*"))
    assert len(runs) == 2
    weights = [OmegaConf.load(tmp_path / "sweep" / str(i) / "config.yaml").loss.corr_weight for i in (0, 1)]
    assert weights == [0, 0.5]


@pytest.mark.parametrize(
    "script,args,message",
    [
        ("train.py", ["dataset.resolution=48"], "dataset.resolution=48 must be a power of two"),
        ("train.py", ["model.bottom_channels=33"], "model.bottom_channels=33 must be an integer divisible by 2^2"),
        ("train.py", ["model.kernel_size=2"], "model.kernel_size=2 must be an integer >= 3"),
        ("train.py", ["loss._name_=nope"], "loss._name_: unknown loss 'nope'; registered: gan_qp, hinge"),
        ("train.py", ["+loss.gamma=1"], "loss.gamma: loss 'gan_qp' has no argument 'gamma'; it takes: corr_weight"),
        ("evaluate.py", ["ckpt=.", "metrics.names=[nope]"], "metrics.nope._name_: unknown metric 'nope'"),
        ("evaluate.py", ["ckpt=."], "checkpoint . is a directory"),
        ("train.py", ["loss=foo"], "unknown loss 'foo'; choose one of: gan_qp, hinge, lsgan, nsgan, rpgan, wgan_gp"),
        ("train.py", ["loss.corr_weight=-1"], "loss.corr_weight=-1"),
        ("train.py", ["loss.corr_factor_e=-1"], "loss.corr_factor_e=-1"),
        (
            "train.py",
            ["loss.corr_on=encoder"],
            "replaced by loss.corr_factor_g (loss.corr_on=encoder is loss.corr_factor_g=0)",
        ),
        ("train.py", ["dataset=image_folder"], "dataset.root is not set"),
        ("train.py", ["dataset=image_folder", "dataset.root=/no/such/dir"], "dataset.root=/no/such/dir does not exist"),
        ("train.py", ["trainer.max_steps=100"], "set the training length in generator iterations with train.steps"),
        ("train.py", ["train.update=both"], "train.update='both' must be one of"),
        ("train.py", ["callbacks.images.every_n_steps=0"], "callbacks.images.every_n_steps=0 must be an integer >= 1"),
        (
            "train.py",
            ["callbacks=fid", "callbacks.fid.n_samples=1"],
            "callbacks.fid.n_samples=1 must be an integer >= 2",
        ),
        ("evaluate.py", [], "ckpt has no value: add ckpt=... to the command line"),
        ("-m", ["ogan_pl.tools.invert", "ckpt=a.ckpt", "input=in"], "output has no value: add output=..."),
        ("-m", ["ogan_pl.tools.invert"], "ckpt, input, output have no value: add ckpt=... input=... output=..."),
        ("-m", ["ogan_pl.tools.edit", "ckpt=a.ckpt", "input=in"], "directions, output have no value"),
        ("-m", ["ogan_pl.tools.directions", "ckpt=a.ckpt"], "output has no value"),
        (
            "-m",
            ["ogan_pl.tools.directions", "ckpt=a.ckpt", "output=."],
            "output=. is a folder or a device; give the directions file's",
        ),
        (
            "-m",
            ["ogan_pl.tools.directions", "ckpt=a.ckpt", "output=/dev/null"],
            "output=/dev/null is a folder or a device",
        ),
        (
            "-m",
            ["ogan_pl.tools.edit", "ckpt=a.ckpt", "directions=d.pt", "output=/dev/null/x"],
            "output=/dev/null/x: cannot write there (/dev/null is a file, not a folder)",
        ),
        (
            "-m",
            ["ogan_pl.tools.directions", "ckpt=a.ckpt", "output=/dev/null/d.pt"],
            "/dev/null is a file, not a folder",
        ),
        ("evaluate.py", ["ckpt=missing.ckpt"], "checkpoint missing.ckpt not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, script, args, message):
    """Each row run in this process (run_command_here); test_refusals_from_a_real_process runs
    one row of each command as its own process."""
    proc = run_command_here(tmp_path, script, *args, "hydra.run.dir=run")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and message in lines[-1], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "script,args,message",
    [
        ("train.py", ["loss.corr_weight=-1"], "loss.corr_weight=-1 must be a finite number >= 0"),
        ("evaluate.py", ["ckpt=missing.ckpt"], "checkpoint missing.ckpt not found"),
        ("-m", ["ogan_pl.tools.invert", "ckpt=a.ckpt", "input=in"], "output has no value: add output=..."),
    ],
)
def test_refusals_from_a_real_process(run_script, script, args, message):
    """As a user meets them: the process exits 2 with one error line, no traceback."""
    proc = run_script(script, *args, "hydra.run.dir=run", check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and message in lines[-1], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_corrupt_checkpoint_is_one_line_error(run_script, tmp_path):
    (tmp_path / "broken.ckpt").write_bytes(b"\x80\x04not really a checkpoint")
    proc = run_script("evaluate.py", "ckpt=broken.ckpt", "hydra.run.dir=run", check=False, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot read checkpoint broken.ckpt")


def test_checkpoint_with_pickle_payload_is_refused_and_does_not_run(run_script, tmp_path):
    import os

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))

    torch.save({"state_dict": {}, "hyper_parameters": {"x": Payload()}}, tmp_path / "evil.ckpt")
    proc = run_script("evaluate.py", "ckpt=evil.ckpt", "hydra.run.dir=run", check=False, timeout=60)
    assert proc.returncode == 2 and not (tmp_path / "PWNED").exists()
    assert "refusing to load evil.ckpt: it asks to import posix.system" in proc.stderr.strip().splitlines()[-1]


def test_empty_image_folder_is_one_line_error(run_script, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_script(
        "train.py",
        "dataset=image_folder",
        f"dataset.root={tmp_path / 'empty'}",
        "hydra.run.dir=run",
        check=False,
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no images" in proc.stderr.strip().splitlines()[-1]


def test_missing_tensorboard_is_one_line_error(run_script):
    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed, so logger=tensorboard works")
    proc = run_script("train.py", "logger=tensorboard", "hydra.run.dir=run", check=False, timeout=60)
    assert proc.returncode == 2 and "needs the tensorboard package" in proc.stderr.strip().splitlines()[-1]


def test_default_run_trains_on_the_builtin_digits_and_ends_with_a_summary(run_script, tmp_path):
    """`python train.py` as `make train` runs it (shortened): real digits, classifier metrics during
    training, and the closing lines with their real-data references."""
    proc = run_script(
        "train.py",
        "train.steps=20",
        "callbacks.quality.every_n_steps=10",
        "callbacks.quality.n_samples=200",
        "metrics.classifier.epochs=1",
        "logger=none",
        "callbacks.summary.n_rho=200",
        "hydra.run.dir=run",
    )
    config = OmegaConf.load(tmp_path / "run" / "config.yaml")
    assert config.dataset._name_ == "digits" and config.model.z_dim == 32 and config.model.bottom_channels == 64
    out = proc.stdout
    assert "== O-GAN after 20 generator iterations" in out and "real held-out images:" in out
    for label in ("reconstructions keep the label", "class-IS of samples", "FD in classifier features", "rho("):
        assert label in out, label
    lines = [json.loads(line) for line in (tmp_path / "run" / "checkpoints" / "metrics.jsonl").read_text().splitlines()]
    assert [line["g_iter"] for line in lines] == [10, 20]
    assert {"recon_classifier_accuracy", "is_classifier", "fd_classifier"} <= set(lines[-1]["metrics"])
    protocol = lines[-1]["protocol"]
    assert protocol["classifier"]["holdout_accuracy"] > 0.5 and protocol["reference"]["is_classifier"] > 5
    from PIL import Image

    grid = Image.open(tmp_path / "run" / "images" / "samples_0000020.png")
    assert grid.size[0] >= 8 * 64  # 32 px digits upscaled to 64 px cells


def test_equal_time_budget_run_ends_with_scores_in_its_result(run_script, tmp_path):
    """experiment=digits_budget (the equal-time tables of docs/results.md): the wall-clock budget ends the run,
    then the classifier metrics and rho land in result.json, which `ogan-sweep-summary` reads."""
    run_script(
        "train.py",
        "experiment=digits_budget",
        "trainer.max_time=00:00:00:03",
        "model.bottom_channels=16",
        "callbacks.quality.n_samples=200",
        "metrics.classifier.epochs=1",
        "callbacks.summary.n_rho=200",
        "metrics.ppl_classifier.n_paths=100",
        "hydra.run.dir=run",
        timeout=240,
    )
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert 0 < result["g_iter"] < 1000000
    metrics = result["metrics"]
    for key in (
        "metrics/recon_classifier_accuracy",
        "metrics/is_classifier",
        "metrics/fd_classifier",
        "metrics/encoder/rho",
        "metrics/ppl_classifier",
        "metrics/ppl_classifier_encoder",
    ):
        assert math.isfinite(metrics[key]), key
    for name in ("precision", "recall", "coverage"):
        assert 0 <= metrics[f"metrics/prdc_classifier_{name}"] <= 1, name
    assert metrics["metrics/prdc_classifier_density"] >= 0
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    # re-run from the checkpoint: the same samples give the same numbers, with the protocol in the line
    run_script(
        "evaluate.py",
        "ckpt=run/checkpoints/last.ckpt",
        "metrics.names=[prdc_classifier]",
        "metrics.n_fake=200",
        "metrics.classifier.epochs=1",
        "hydra.run.dir=eval",
        timeout=240,
    )
    line = json.loads((tmp_path / "run" / "checkpoints" / "metrics.jsonl").read_text().splitlines()[-1])
    assert line["metrics"]["prdc_classifier_precision"] == metrics["metrics/prdc_classifier_precision"]
    assert line["protocol"]["prdc_classifier"]["k_precision_recall"] == 3
    assert line["protocol"]["prdc_classifier"]["n_fake"] == 200
