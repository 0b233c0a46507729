"""The package installs like one: a wheel built from the repository, installed (not editable) into a
fresh virtual environment, runs its commands from an empty folder, with the configs it ships."""

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
import venv
import zipfile

import pytest

from tests.conftest import ROOT, script_env, start_demo

SITE_PACKAGES = next(p for p in sys.path if p.endswith("site-packages"))
TINY = [
    "dataset=shapes",
    "~callbacks.quality",
    "~callbacks.encoder_watch",
    "model.bottom_channels=32",
    "model.z_dim=16",
    "dataset.batch_size=8",
    "dataset.size=64",
    "dataset.holdout_size=16",
    "train.steps=3",
    "logger=none",
]


def _run(command, cwd, env):
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the fresh environment's bin folder, an environment without the repository on any path)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy: the build writes build/ and egg-info beside the sources
    for name in ("ogan_pl", "conf"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, source / name)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(work / "dist"),
        ],
        work,
        os.environ,
    )
    wheel = next((work / "dist").glob("ogan_pl-*.whl"))
    venv.create(work / "env", with_pip=False)
    env_site = next((work / "env" / "lib").glob("python*/site-packages"))
    # the dependencies already installed here, after the environment's own packages; without the
    # .pth files of this one (its editable install of ogan_pl is not seen there)
    (env_site / "dependencies.pth").write_text(SITE_PACKAGES + "\n")
    env = {k: v for k, v in script_env(work).items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(work / "env" / "bin" / "python"),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        work,
        env,
    )
    return work / "env" / "bin", env, wheel


def test_the_wheel_ships_the_configs(installed):
    _, _, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.removeprefix("ogan_pl/conf/") for n in names if n.startswith("ogan_pl/conf/"))
    in_repo = sorted(str(p.relative_to(ROOT / "conf")) for p in (ROOT / "conf").rglob("*.yaml"))
    assert shipped == in_repo


def test_an_installed_package_trains_and_evaluates_from_an_empty_folder(installed, tmp_path):
    bin_dir, env, _ = installed
    where = _run(
        [str(bin_dir / "python"), "-c", "import ogan_pl.run.cli as c; print(c.__file__, c.CONF_DIR)"], tmp_path, env
    ).stdout.split()
    assert not where[0].startswith(str(ROOT)) and where[1].endswith(os.path.join("ogan_pl", "conf"))
    _run([str(bin_dir / "ogan-train"), *TINY, "hydra.run.dir=run"], tmp_path, env)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    done = _run(
        [
            str(bin_dir / "ogan-evaluate"),
            f"ckpt={ckpt}",
            "metrics.names=[encoder]",
            "metrics.n_fake=16",
            "metrics.n_real=16",
            "metrics.batch_size=8",
            "metrics.encoder.n_rho=64",
            "metrics.encoder.n_probe_train=32",
            "hydra.run.dir=ev",
        ],
        tmp_path,
        env,
    )
    assert "encoder/rho" in done.stdout and (tmp_path / "run" / "checkpoints" / "metrics.jsonl").is_file()
    # a config folder of the user's own, through Hydra's search path
    (tmp_path / "mine" / "experiment").mkdir(parents=True)
    (tmp_path / "mine" / "experiment" / "tiny_mine.yaml").write_text("# @package _global_\ntrain:\n  steps: 2\n")
    _run(
        [
            str(bin_dir / "ogan-train"),
            *TINY,
            "experiment=tiny_mine",
            f"hydra.searchpath=[file://{tmp_path / 'mine'}]",
            "hydra.run.dir=run2",
        ],
        tmp_path,
        env,
    )
    assert (tmp_path / "run2" / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev", "mine", "run", "run2"]  # outputs here, nothing else


def test_the_installed_package_opens_its_pretrained_model(installed, tmp_path):
    bin_dir, env, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert {"ogan_pl/pretrained/digits.ckpt", "ogan_pl/pretrained/digits.directions.pt"} <= set(names)
    done = _run(
        [str(bin_dir / "python"), "-c", "from ogan_pl import OGAN; m = OGAN.from_pretrained('digits'); print(m.z_dim)"],
        tmp_path,
        env,
    )
    assert done.stdout.split() == ["32"]


def test_the_installed_demo_serves_its_page(installed, tmp_path):
    bin_dir, env, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"ogan_pl/demo/page/{n}" for n in ("index.html", "demo.js", "demo.css")} <= names
    proc, url = start_demo(tmp_path, "port=0", command=[str(bin_dir / "ogan-demo")], env=env)
    try:
        for page in ("", "demo.js", "api/info"):
            with urllib.request.urlopen(url + page, timeout=30) as answer:
                assert answer.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 130
