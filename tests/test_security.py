"""A checkpoint is a file from a stranger: loading one never runs code and never builds anything
but a registered part, whichever entry point reads it."""

import builtins
import copy
import hashlib
import importlib
import os
import pickle
import pkgutil
import shutil
import subprocess
import types
from pathlib import Path

import pytest
import torch

import ogan_pl
from ogan_pl import OGAN
from ogan_pl.checkpoints import Checkpoint
from ogan_pl.registry.registries import ARCHITECTURES, OPTIMIZERS
from ogan_pl.utils.errors import UserError
from tests.conftest import run_in
from tests.test_cli import TINY


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint written by train.py (2 generator iterations of the tiny model)."""
    cwd = tmp_path_factory.mktemp("real_run")
    run_in(cwd, "train.py", *TINY, "logger=none", "train.steps=2", "hydra.run.dir=run")
    return cwd / "run" / "checkpoints" / "last.ckpt"


class _Payload:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def attack_vectors(tmp_path: Path) -> tuple[dict[str, dict], Path, Path]:
    """The attacks of the issue: unpickle a payload through torch.load of bytes, np.load with
    allow_pickle of a pickle file, and overwrite a file through ogan_pl's own atomic save.
    Returns (vectors, sentinel that any payload would create, victim file that one would overwrite)."""
    sentinel = tmp_path / "PWNED"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    pickled = pickle.dumps(_Payload(f"touch {sentinel}"))
    (tmp_path / "payload.pkl").write_bytes(pickled)
    vectors = {
        "torch_load_bytes": {
            "_target_": "ogan_pl.module.torch.load",
            "weights_only": False,
            "f": {
                "_target_": "ogan_pl.run.sweeps.io.BytesIO",
                "_args_": [{"_target_": "ogan_pl.data.cache.np.array", "_args_": [pickled], "dtype": "uint8"}],
            },
        },
        "np_load_allow_pickle": {
            "_target_": "ogan_pl.data.cache.np.load",
            "file": str(tmp_path / "payload.pkl"),
            "allow_pickle": True,
        },
        "overwrite_file": {"_target_": "ogan_pl.utils.io.atomic_torch_save", "obj": 0, "path": str(victim)},
    }
    return vectors, sentinel, victim


def plant(config: dict, place: str, value) -> dict:
    """A copy of `config` with `value` at `place` (a dotted path; missing levels are created)."""
    config = copy.deepcopy(config)
    *parents, last = place.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return config


PLACES = [
    "model",
    "model.encoder",
    "model.kernel_size",
    "loss",
    "optim.encoder",
    "optim.generator.betas",
    "dataset.size",
    "train.extra.deeper",
    "ogan",
    "speed.compile",
    "evil",
]


def save_with_config(checkpoint: dict, config: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**checkpoint, "hyper_parameters": {"config": config}}, path)
    return path


def test_a_real_checkpoint_loads(real_checkpoint):
    """The positive control: without a planted value the same files load."""
    model = OGAN.load_from_checkpoint(real_checkpoint)
    assert model.g_iter == 2


def test_attack_vectors_refused_in_process_at_every_depth(real_checkpoint, tmp_path):
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    config = checkpoint["hyper_parameters"]["config"]
    vectors, sentinel, victim = attack_vectors(tmp_path)
    for name, vector in vectors.items():
        for place in PLACES:
            path = save_with_config(checkpoint, plant(config, place, vector), tmp_path / f"{name}.ckpt")
            with pytest.raises(UserError) as err:
                OGAN.load_from_checkpoint(path)
            message = str(err.value)
            assert place.split(".")[0] in message and "\n" not in message, (name, place, message)
    assert not sentinel.exists() and victim.read_text() == "precious"


@pytest.mark.parametrize("entry", ["evaluate", "train_ckpt_path", "resume_auto"])
def test_attack_vectors_refused_by_every_entry_point(real_checkpoint, tmp_path, entry):
    """evaluate.py ckpt=, train.py ckpt_path= and resume=auto: one line, exit 2, no payload ran,
    and a resumed run directory is left as it was."""
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    config = checkpoint["hyper_parameters"]["config"]
    vectors, sentinel, victim = attack_vectors(tmp_path)
    for name, vector in vectors.items():
        hostile = plant(config, "model.encoder", vector)
        if entry == "evaluate":
            path = save_with_config(checkpoint, hostile, tmp_path / f"{name}.ckpt")
            proc = run_in(
                tmp_path,
                "evaluate.py",
                f"ckpt={path}",
                "metrics.names=[encoder]",
                "hydra.run.dir=ev",
                check=False,
                timeout=120,
            )
        elif entry == "train_ckpt_path":
            path = save_with_config(checkpoint, hostile, tmp_path / f"{name}.ckpt")
            proc = run_in(
                tmp_path,
                "train.py",
                *TINY,
                "logger=none",
                "train.steps=3",
                f"ckpt_path={path}",
                f"hydra.run.dir=run_{name}",
                check=False,
                timeout=120,
            )
        else:
            run_dir = tmp_path / f"resume_{name}"
            path = save_with_config(checkpoint, hostile, run_dir / "checkpoints" / "last.ckpt")
            before = hashlib.sha256(path.read_bytes()).hexdigest()
            proc = run_in(
                tmp_path,
                "train.py",
                *TINY,
                "logger=none",
                "train.steps=3",
                f"hydra.run.dir={run_dir}",
                check=False,
                timeout=120,
            )
            assert hashlib.sha256(path.read_bytes()).hexdigest() == before
        assert proc.returncode == 2, (name, proc.stderr[-2000:])
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and "model.encoder._target_" in last, (name, last)
        assert "Traceback" not in proc.stderr
    assert not sentinel.exists() and victim.read_text() == "precious"


def reachable_callables() -> list[str]:
    """Every public callable reachable by a dotted path from ogan_pl's modules, one level into the
    modules they import (torch, np, os, io, subprocess, shutil, ...), each imported module through
    the first ogan_pl path that reaches it, and also by its own name."""
    names: set[str] = set()
    modules_seen: set[str] = set()
    for info in pkgutil.walk_packages(ogan_pl.__path__, "ogan_pl."):
        module = importlib.import_module(info.name)
        for attr, value in list(vars(module).items()):
            if attr.startswith("_"):
                continue
            if isinstance(value, types.ModuleType):
                if value.__name__ in modules_seen:
                    continue
                modules_seen.add(value.__name__)
                for sub in dir(value):
                    if sub.startswith("_"):
                        continue
                    try:
                        obj = getattr(value, sub)
                    except Exception:  # noqa: BLE001, S112 - lazily imported submodules that fail: nothing to call
                        continue
                    if callable(obj):
                        names.add(f"{info.name}.{attr}.{sub}")
                        names.add(f"{value.__name__}.{sub}")
            elif callable(value):
                names.add(f"{info.name}.{attr}")
    return sorted(names)


def test_no_reachable_callable_can_be_planted_in_a_stored_config(real_checkpoint, tmp_path):
    """Generated: each public callable reachable from ogan_pl, named at several depths of a real
    checkpoint's config (as `_target_` with arguments that would create the sentinel, and as the
    registry name of a part), is refused by the one loader all entry points share; the only names
    that load are the registered parts themselves."""
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    config = checkpoint["hyper_parameters"]["config"]
    sentinel = tmp_path / "PWNED"
    issue_paths = [
        "ogan_pl.module.torch.load",
        "ogan_pl.run.sweeps.io.BytesIO",
        "ogan_pl.data.cache.np.array",
        "ogan_pl.data.cache.np.load",
        "ogan_pl.utils.io.atomic_torch_save",
    ]
    # the standard library's code runners, whether or not ogan_pl imports them
    stdlib = [
        f"{m.__name__}.{a}"
        for m in (os, subprocess, shutil, pickle, builtins, importlib)
        for a in dir(m)
        if not a.startswith("_") and callable(getattr(m, a))
    ]
    targets = sorted({*reachable_callables(), *issue_paths, *stdlib, "builtins.__import__"})
    for name in ("torch.load", "os.system", "subprocess.run", "shutil.rmtree", "numpy.load", "builtins.exec"):
        assert name in targets, name
    assert len(targets) > 2000
    registered = {f"{cls.__module__}.{cls.__qualname__}" for cls in [ARCHITECTURES.get("dcgan")]}
    registered_optimizers = {f"{cls.__module__}.{cls.__qualname__}" for _, cls in OPTIMIZERS._parts.items()}
    accepted = []
    for target in targets:
        call = {"_target_": target, "_args_": [f"touch {sentinel}"], "path": str(sentinel)}
        hostile = {
            "model.encoder": plant(config, "model.encoder", call),
            "loss": plant(config, "loss", {"_target_": target, "corr_weight": 0.5}),
            "dataset.extra": plant(config, "dataset.extra.deep", [call]),
            "evil": plant(config, "evil", call),
            "model._name_": plant(config, "model._name_", target),
            "optim.encoder._name_": plant(config, "optim.encoder._name_", target),
        }
        for place, stored in hostile.items():
            try:
                OGAN.from_checkpoint(Checkpoint.check({**checkpoint, "hyper_parameters": {"config": stored}}))
            except UserError as err:
                assert place.split(".")[0] in str(err), (target, place, str(err))
                continue
            accepted.append((place, target))
    expected = {("model._name_", t) for t in targets if t in registered}
    expected |= {("optim.encoder._name_", t) for t in targets if t in registered_optimizers}
    assert set(accepted) == expected
    assert not sentinel.exists()
