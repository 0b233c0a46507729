"""ogan-export-images writes a labelled dataset as a folder of PNGs that `dataset=image_folder`
reads back pixel for pixel; evaluate.py's `dataset.name` judges a model trained on such a folder on
the dataset it came from."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ogan_pl.registry.plugins import load_plugins
from ogan_pl.registry.registries import DATASETS
from ogan_pl.run.cli import dataset_defaults
from ogan_pl.tools.export_images import export, main
from tests.conftest import script_env
from tests.test_cli import TINY

load_plugins()  # the built-in datasets, registered as train.py sees them


def test_export_then_image_folder_gives_back_the_same_pixels(tmp_path):
    shapes = DATASETS.build(
        {"_name_": "shapes", "resolution": 32, "size": 30, "holdout_size": 6, "batch_size": 8}, "dataset"
    )
    assert export(shapes, tmp_path / "png", ("train", "holdout")) == (36, 0)  # (written, found from an earlier run)
    labels = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert labels == ["0", "1", "2"]  # one folder per shape type
    folder = DATASETS.build(
        {
            "_name_": "image_folder",
            "root": str(tmp_path / "png"),
            "resolution": 32,
            "channels": 3,
            "holdout_size": 3,
            "batch_size": 8,
            "cache_dir": str(tmp_path / "cache"),
        },
        "dataset",
    )
    folder.setup()
    got = sorted(folder.train_set[i]["image"].numpy().tobytes() for i in range(len(folder.train_set)))
    got += [folder.holdout_set[i]["image"].numpy().tobytes() for i in range(len(folder.holdout_set))]
    want = [shapes.train_set[i]["image"].numpy().tobytes() for i in range(30)]
    want += [shapes.holdout_set[i]["image"].numpy().tobytes() for i in range(6)]
    assert sorted(got) == sorted(want)


def test_dataset_defaults_are_the_yaml_a_run_composes(tmp_path, monkeypatch):
    """One composition serves ogan-export-images and evaluate.py dataset.name=NAME: the dataset's file
    with its defaults base, paths under the current folder, nothing for a dataset without a file."""
    monkeypatch.chdir(tmp_path)
    digits = dataset_defaults("digits")
    assert (digits["_name_"], digits["resolution"], digits["holdout_size"]) == ("digits", 32, 1000)
    assert digits["batch_size"] == 64  # from the group's base, _loader.yaml
    assert dataset_defaults("cifar10")["root"] == str(tmp_path / "data" / "cifar10")
    assert dataset_defaults("my_plugin_dataset") == {}


def test_export_cli_takes_the_datasets_own_config(tmp_path):
    """conf/dataset/shapes.yaml's holdout_size (512), at the resolution asked for."""
    main(["shapes", str(tmp_path / "out"), "--split", "holdout", "--resolution", "16"])
    files = sorted((tmp_path / "out").glob("*/holdout_*.png"))
    assert len(files) == 512
    assert Image.open(files[0]).size == (16, 16) and Image.open(files[0]).mode == "RGB"


def test_export_cli_refuses_a_non_empty_folder_in_one_line(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.png").write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, "-m", "ogan_pl.tools.export_images", "digits", str(tmp_path / "out")],
        cwd=tmp_path,
        env=script_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and "is not empty and not written by an ogan_pl tool" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_model_trained_on_a_folder_is_judged_on_its_source_dataset(run_script, tmp_path):
    shapes = DATASETS.build(
        {"_name_": "shapes", "resolution": 32, "size": 60, "holdout_size": 8, "batch_size": 8}, "dataset"
    )
    export(shapes, tmp_path / "png", ("train", "holdout"))
    args = [a for a in TINY if not a.startswith(("dataset=", "dataset.size", "dataset.holdout_size"))]
    proc = run_script(
        "train.py",
        *args,
        "dataset=image_folder",
        "dataset.root=png",
        "dataset.resolution=32",
        "dataset.holdout_size=6",
        "dataset.num_workers=0",
        "logger=none",
        "hydra.run.dir=run",
    )
    assert "settings: 32 px, 3 channels, 62 training images -> the small-image settings" in proc.stdout + proc.stderr
    # the folder has no factors; through dataset.name=shapes the encoder metric reads the shapes' own
    common = [
        "ckpt=run/checkpoints/last.ckpt",
        "metrics.names=[encoder]",
        "metrics.encoder.n_rho=64",
        "metrics.encoder.n_probe_train=32",
        "dataset.holdout_size=64",
    ]
    run_script("evaluate.py", *common, "results_file=folder.jsonl", "hydra.run.dir=eval0")
    run_script("evaluate.py", *common, "dataset.name=shapes", "results_file=shapes.jsonl", "hydra.run.dir=eval")
    folder, judged = (
        json.loads((tmp_path / f"{name}.jsonl").read_text().splitlines()[-1]) for name in ("folder", "shapes")
    )
    extra = set(judged["metrics"]) - set(folder["metrics"])
    assert extra and all(np.isfinite(judged["metrics"][k]) for k in extra)
    assert set(folder["metrics"]) < set(judged["metrics"])
