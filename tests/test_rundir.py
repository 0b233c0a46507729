"""A run directory is one training's: locked while in use, never overwritten by a run that cannot
resume there; broken checkpoint files are one line."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from ogan_pl.run.rundir import LOCK_FILE, RunDirectoryLock
from ogan_pl.utils.errors import UserError
from tests.conftest import start_in
from tests.test_cli import TINY


def test_a_locked_run_directory_refuses_a_second_holder_and_is_free_once_released(tmp_path):
    with RunDirectoryLock(tmp_path / "run"):
        holder = json.loads((tmp_path / "run" / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"]
        with pytest.raises(
            UserError, match=rf"run directory .*run is in use by another training \(pid {os.getpid()} on"
        ):
            RunDirectoryLock(tmp_path / "run").__enter__()
    with RunDirectoryLock(tmp_path / "run"):  # released: free again
        pass


def test_a_lock_left_by_a_dead_training_is_stale(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_FILE).write_text(json.dumps({"pid": proc.pid, "host": os.uname().nodename}))
    with RunDirectoryLock(tmp_path / "run"):  # its kernel lock went with its process
        assert json.loads((tmp_path / "run" / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_a_second_training_in_a_run_directory_in_use_refuses_with_one_line(run_script, tmp_path):
    first = start_in(tmp_path, "train.py", *TINY, "logger=none", "train.steps=100000", "hydra.run.dir=run")
    try:
        lock = tmp_path / "run" / LOCK_FILE
        deadline = time.time() + 120
        while not (lock.is_file() and lock.read_text()) and time.time() < deadline:
            time.sleep(0.2)
        assert lock.read_text(), (tmp_path / "out.txt").read_text()[-2000:]
        config_before = (tmp_path / "run" / "config.yaml").read_bytes()
        proc = run_script("train.py", *TINY, "logger=none", "model.z_dim=8", "hydra.run.dir=run", check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        line = proc.stderr.strip().splitlines()[-1]
        assert line.startswith("error: run directory") and f"pid {first.pid} on" in line, proc.stderr[-2000:]
        assert (tmp_path / "run" / "config.yaml").read_bytes() == config_before
    finally:
        first.kill()
        first.wait()


def test_resume_auto_with_another_model_refuses_before_writing_anything(run_script, tmp_path):
    run_script("train.py", *TINY, "logger=none", "train.steps=2", "hydra.run.dir=run")
    run = tmp_path / "run"
    before = {p: p.read_bytes() for p in [run / "config.yaml", *(run / ".hydra").iterdir()]}
    proc = run_script(
        "train.py", *TINY, "logger=none", "train.steps=4", "model.bottom_channels=64", "hydra.run.dir=run", check=False
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: resume=auto:") and "model.bottom_channels=32 there, 64 here" in line
    assert "resume=never" in line
    assert {p: p.read_bytes() for p in before} == before  # config.yaml and .hydra/ untouched


def bad_checkpoints(tmp_path) -> dict:
    good = {"state_dict": {"w": torch.randn(4096)}, "hyper_parameters": {"config": {}}}
    torch.save(good, tmp_path / "whole.ckpt")
    data = (tmp_path / "whole.ckpt").read_bytes()
    files = {"empty.ckpt": b"", "truncated.ckpt": data[: len(data) // 2], "random.ckpt": os.urandom(3000)}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.ckpt")  # a torch file, not a train.py checkpoint
    return {
        "empty.ckpt": "cannot read checkpoint",
        "truncated.ckpt": "cannot read checkpoint",
        "random.ckpt": "cannot read checkpoint",
        "foreign.ckpt": "is not a checkpoint written by train.py",
        "folder": "is a directory",
    }


def test_every_kind_of_broken_checkpoint_file_is_a_user_error(tmp_path):
    from ogan_pl.checkpoints import read_checkpoint

    expected = bad_checkpoints(tmp_path)
    (tmp_path / "folder").mkdir()
    for name, message in expected.items():
        with pytest.raises(UserError, match=message) as err:
            read_checkpoint(tmp_path / name)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "script, key, name",
    [
        ("evaluate.py", "ckpt", "empty.ckpt"),
        ("train.py", "ckpt_path", "truncated.ckpt"),
        ("train.py", "ckpt_path", "folder"),
    ],
)
def test_broken_checkpoint_files_are_one_line_on_the_command_line(run_script, tmp_path, script, key, name):
    expected = bad_checkpoints(tmp_path)
    (tmp_path / "folder").mkdir()
    args = [*TINY, "logger=none"] if script == "train.py" else []
    proc = run_script(script, *args, f"{key}={tmp_path / name}", "hydra.run.dir=run", check=False, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[-1].startswith("error: ") and expected[name] in lines[-1], lines[-1]
