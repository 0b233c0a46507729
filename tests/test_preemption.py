"""Kill tests: SIGTERM / SIGUSR1 save and resume=auto continues; SIGKILL mid-save corrupts nothing."""

import pickle
import signal
import time
from pathlib import Path

import pytest
import torch

from ogan_pl.checkpoints import find_resume_checkpoint
from tests.conftest import run_in, start_in
from tests.test_cli import TINY, read_csv_metrics

LONG = [
    *TINY,
    "train.steps=100000",
    "callbacks.checkpoint.every_n_steps=25",
    "callbacks.images.every_n_steps=100000",
    "logger=csv",
    "hydra.run.dir=run",
]


def wait_for(path: Path, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the run exited ({proc.returncode}) before {path.name} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.05)


def assert_same_state(restored: dict, saved: dict) -> None:
    assert restored["g_iter"] == saved["ogan"]["g_iter"] and restored["global_step"] == saved["global_step"]
    assert any("_ema." in k for k in saved["state_dict"])
    for key, value in saved["state_dict"].items():
        assert torch.equal(restored["state_dict"][key], value), key
    for got, want in zip(restored["optimizer_states"], saved["optimizer_states"], strict=True):
        assert want["state"]
        for pid, state in want["state"].items():
            for name, tensor in state.items():
                assert torch.equal(torch.as_tensor(got["state"][pid][name]), torch.as_tensor(tensor)), (pid, name)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1])
def test_stop_signal_saves_and_resume_auto_continues(tmp_path, signum):
    proc = start_in(tmp_path, "train.py", *LONG)
    wait_for(tmp_path / "run" / "checkpoints" / "giter_0000025.ckpt", proc)
    proc.send_signal(signum)
    assert proc.wait(timeout=120) == 128 + signum, (tmp_path / "out.txt").read_text()[-3000:]
    output = (tmp_path / "out.txt").read_text()
    assert f"stopped by {signal.Signals(signum).name}" in output
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    stopped_at = saved["ogan"]["g_iter"]
    assert stopped_at >= 25 and saved["global_step"] == 2 * stopped_at  # saved at a step boundary

    record = tmp_path / "state_at_start.pt"
    run_in(
        tmp_path,
        "train.py",
        *LONG,
        f"train.steps={stopped_at + 3}",  # resume=auto is the default
        "+callbacks.record._target_=tests.helpers.RecordStateAtStart",
        f"+callbacks.record.path={record}",
    )
    assert_same_state(torch.load(record, weights_only=True), saved)
    final = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["ogan"]["g_iter"] == stopped_at + 3
    steps = [int(r["step"]) for r in read_csv_metrics(tmp_path / "run") if r.get("train/loss_e")]
    assert steps[-3:] == [stopped_at + 1, stopped_at + 2, stopped_at + 3]


@pytest.mark.parametrize(
    "slow_write,resumes_at",
    [
        (3, 2),  # killed writing giter_0000004.ckpt: giter_0000002 / last.ckpt (2) are the newest complete
        (4, 4),  # killed writing last.ckpt at 4: the old last.ckpt is intact, giter_0000004.ckpt is newer
    ],
)
def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one_usable(tmp_path, slow_write, resumes_at):
    args = [*TINY, "train.steps=100", "logger=none", "hydra.run.dir=run"]  # checkpoints every 2 iterations
    marker = tmp_path / "writing"
    proc = start_in(
        tmp_path,
        "tests/scripts/train_with_slow_saves.py",
        *args,
        env={"SLOW_SAVE_FROM": str(slow_write), "SLOW_SAVE_MARKER": str(marker)},
    )
    try:
        wait_for(marker, proc)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    partial = Path(marker.read_text())
    assert partial.exists() and partial.name.startswith(".")  # the half-written temporary file
    with pytest.raises((RuntimeError, EOFError, pickle.UnpicklingError)):  # whichever the cut falls on
        torch.load(partial, weights_only=True)
    checkpoints = tmp_path / "run" / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["ogan"]["g_iter"] == 2  # the kill never touched it
    newest = torch.load(find_resume_checkpoint(checkpoints), weights_only=True)
    assert newest["ogan"]["g_iter"] == resumes_at

    record = tmp_path / "state_at_start.pt"
    run_in(
        tmp_path,
        "train.py",
        *args,
        "train.steps=6",
        "+callbacks.record._target_=tests.helpers.RecordStateAtStart",
        f"+callbacks.record.path={record}",
    )
    assert_same_state(torch.load(record, weights_only=True), newest)
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["ogan"]["g_iter"] == 6


def test_find_resume_checkpoint_skips_corrupt_files(tmp_path):
    torch.save({"ogan": {"g_iter": 10}}, tmp_path / "giter_0000010.ckpt")
    torch.save({"ogan": {"g_iter": 10}}, tmp_path / "last.ckpt")
    torch.save({"ogan": {"g_iter": 4}}, tmp_path / "best_fid.ckpt")
    (tmp_path / "giter_0000020.ckpt").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / ".last.ckpt.tmp").write_bytes(b"partial")
    assert find_resume_checkpoint(tmp_path) == tmp_path / "last.ckpt"
    assert find_resume_checkpoint(tmp_path / "missing") is None


def test_resume_never_starts_afresh(run_script, tmp_path):
    run_script("train.py", *TINY, "logger=none", "train.steps=2", "hydra.run.dir=run")
    proc = run_script("train.py", *TINY, "logger=none", "train.steps=2", "hydra.run.dir=run", "resume=never")
    assert "resume=auto" not in proc.stdout + proc.stderr
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4


def test_resumed_run_continues_its_wandb_run(run_script, tmp_path):
    run_script("train.py", *TINY, "train.steps=2", "hydra.run.dir=run")
    run_script("train.py", *TINY, "train.steps=4", "hydra.run.dir=run")  # resume=auto, same directory
    runs = sorted((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and len({r.name.rsplit("-", 1)[1] for r in runs}) == 1  # one W&B run id
