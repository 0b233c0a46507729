import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ogan_pl.run.setup import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
register_resolvers()  # the tests compose conf/ as every command does


def tiny_config(**overrides) -> dict:
    """A complete resolved config (plain dicts, as stored in checkpoints) for a tiny CPU model."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    args = [f"{k}={v}" for k, v in overrides.items()]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        small = [] if "model" in overrides else ["model.bottom_channels=32"]  # dcgan's width
        cfg = compose(
            "config",
            overrides=["dataset=shapes", *small, "model.z_dim=16", "dataset.batch_size=8", "logger=none", *args],
        )
    with open_dict(cfg):
        cfg.paths = dict.fromkeys(("root_dir", "data_dir", "cache_dir", "log_dir", "output_dir"), "unused")
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture
def make_model():
    from ogan_pl import OGAN
    from ogan_pl.config.recipe import Recipe

    def make(seed: int = 0, **overrides) -> OGAN:
        torch.manual_seed(seed)
        return OGAN(Recipe.of_run(tiny_config(**overrides)))

    return make


def script_env(cwd: Path, env: dict | None = None) -> dict:
    """The environment of a user's run in `cwd`: W&B offline under `cwd`, the repo importable."""
    return {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(cwd),
        "WANDB_CONFIG_DIR": str(cwd / "wandb_config"),
        "WANDB_CACHE_DIR": str(cwd / "wandb_cache"),
        "WANDB_DATA_DIR": str(cwd / "wandb_data"),
        "WANDB_SILENT": "true",
        "HYDRA_FULL_ERROR": "0",
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **(env or {}),
    }


def start_in(cwd: Path, script: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    """Start train.py / evaluate.py (or a test script) in `cwd` in the background, output to cwd/out.txt."""
    with open(cwd / "out.txt", "a") as out:  # the child writes through its own copy of the handle
        return subprocess.Popen(
            [sys.executable, str(ROOT / script), *args],
            cwd=cwd,
            env=script_env(cwd, env),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def run_in(
    cwd: Path, script: str, *args: str, check: bool = True, timeout: int = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run train.py / evaluate.py (or `-m module`) in `cwd` as a user would, W&B offline under `cwd`."""
    command = [sys.executable, script if script.startswith("-") else str(ROOT / script), *args]
    proc = subprocess.run(
        command, cwd=cwd, env=script_env(cwd, env), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{script} {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-5000:]}"
        )
    return proc


@pytest.fixture
def run_script(tmp_path):
    """run_in(tmp_path, ...)."""
    return lambda script, *args, **kwargs: run_in(tmp_path, script, *args, **kwargs)


@pytest.fixture(scope="session", autouse=True)
def hermetic_torch_home(tmp_path_factory):
    """No test sees the user's torch hub cache (or downloads into it): an empty TORCH_HOME."""
    previous = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(tmp_path_factory.mktemp("torch_home_session"))
    yield
    if previous is None:
        os.environ.pop("TORCH_HOME")
    else:
        os.environ["TORCH_HOME"] = previous


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory):
    """Random Inception-v3 weights with the real keys, written once per test session."""
    from tests.helpers import write_random_inception_weights

    return write_random_inception_weights(tmp_path_factory.mktemp("inception") / "random-inception.pth")


@pytest.fixture
def torch_home_empty(tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def torch_home(torch_home_empty, inception_weights):
    """A TORCH_HOME whose hub cache holds the (random) weights under their official name."""
    from ogan_pl.metrics.inception import WEIGHTS_NAME

    target = torch_home_empty / "hub" / "checkpoints" / WEIGHTS_NAME
    target.parent.mkdir(parents=True)
    target.symlink_to(inception_weights)
    return torch_home_empty


#: the module whose `main()` a command line runs
COMMAND_MODULES = {"train.py": "ogan_pl.run.train", "evaluate.py": "ogan_pl.run.evaluate"}


def run_command_here(cwd: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    """A command line run inside this test process, as its console script would run it: the same
    `main()` with the same argv, in `cwd`, its stdout, stderr and exit code captured. For tables of
    refused inputs (each row costs no interpreter start-up); the real process is what `run_in` runs.
    `script`: train.py, evaluate.py, or "-m" with the module as the first argument."""
    import contextlib
    import importlib
    import io

    from hydra.core.global_hydra import GlobalHydra

    module = args[0] if script == "-m" else COMMAND_MODULES[script]
    argv = [script if script != "-m" else module, *(args[1:] if script == "-m" else args)]
    out, err, code = io.StringIO(), io.StringIO(), 0
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    sys.argv = argv
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            importlib.import_module(module).main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        GlobalHydra.instance().clear()
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


DIGIT_STEPS = 600


def quiet_cpu_trainer(max_steps: int, callbacks=()):
    """A Lightning Trainer on the CPU for `max_steps` optimizer steps, with nothing written or shown."""
    import pytorch_lightning as pl

    return pl.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )


def train_digits(paths_dir: Path):
    """The default run's settings on the built-in digits for DIGIT_STEPS generator iterations (about
    a minute on 2 cores), seed 0: (the model in eval mode, its resolved config)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    from ogan_pl import OGAN
    from ogan_pl.config.recipe import Recipe
    from ogan_pl.data import DigitsDataModule

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["logger=none", f"train.steps={DIGIT_STEPS}"])
    with open_dict(cfg):
        cfg.paths = {k: str(paths_dir) for k in ("root_dir", "data_dir", "cache_dir", "log_dir", "output_dir")}
    config = OmegaConf.to_container(cfg, resolve=True)
    assert config["dataset"]["_name_"] == "digits"  # the default run
    torch.manual_seed(0)
    model = OGAN(Recipe.of_run(config))
    data = DigitsDataModule(**{k: v for k, v in config["dataset"].items() if k != "_name_"})
    quiet_cpu_trainer(2 * DIGIT_STEPS).fit(model, datamodule=data)
    return model.eval(), config


@pytest.fixture(scope="session")
def digits_600(tmp_path_factory):
    """`train_digits`, trained once per test session: the first worker to ask trains and saves it
    under the session's temporary root, the others wait on the lock and load it."""
    import fcntl

    from ogan_pl import OGAN
    from ogan_pl.config.recipe import Recipe

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # shared by this session's workers
    saved = root / "digits_600.pt"
    with open(root / "digits_600.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not saved.exists():
            model, config = train_digits(root / "digits_600")
            torch.save({"state_dict": model.state_dict(), "config": config, "g_iter": model.g_iter}, saved)
    stored = torch.load(saved, weights_only=True)
    model = OGAN(Recipe.of_run(stored["config"]))
    model.load_state_dict(stored["state_dict"])
    model.g_iter = stored["g_iter"]
    return model.eval(), stored["config"]


def start_demo(cwd: Path, *args: str, command=(sys.executable, "-m", "ogan_pl.tools.demo"), env=None):
    """`ogan-demo ckpt=pretrained:digits ARGS` as a real process, once it serves: (process, its URL).
    The caller stops it (SIGINT) and reads its output."""
    proc = subprocess.Popen(
        [*command, "ckpt=pretrained:digits", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
    )
    line = proc.stdout.readline()
    if not line.startswith("ogan-demo: http://"):
        proc.kill()
        raise AssertionError(f"ogan-demo did not start: {line!r} {proc.communicate()[1][-2000:]}")
    return proc, line.split()[1]
