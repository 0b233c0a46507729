"""A run interrupted and resumed is bitwise the run that was never interrupted (on CPU): the data
order follows the generator iteration (ogan_pl.data.order), every random draw of a step is seeded
by it, and the counters, optimizer states and EMA come back from the checkpoint. A stop signal sent
to the whole process group (DataLoader workers included) still saves last.ckpt and exits 143."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ogan_pl.data.order import IterationBatchSampler
from tests.conftest import ROOT, script_env
from tests.test_cli import TINY
from tests.test_datasets import write_folder

BASE = [*TINY, "logger=none", "callbacks.images.every_n_steps=100000", "callbacks.checkpoint.every_n_steps=100000"]


def final_state(run) -> dict:
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    return {
        "weights": checkpoint["state_dict"],
        "optimizers": checkpoint["optimizer_states"],
        "g_iter": checkpoint["ogan"]["g_iter"],
    }


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a["g_iter"] == b["g_iter"]
    assert a["weights"].keys() == b["weights"].keys()
    for key, value in a["weights"].items():
        assert torch.equal(value, b["weights"][key]), f"{key} differs by {(value - b['weights'][key]).abs().max()}"
    for opt_a, opt_b in zip(a["optimizers"], b["optimizers"], strict=True):
        for pid, state in opt_a["state"].items():
            for name, tensor in state.items():
                assert torch.equal(torch.as_tensor(tensor), torch.as_tensor(opt_b["state"][pid][name])), (pid, name)


@pytest.mark.parametrize(
    "name, args, first, total",
    [
        # 48 training shapes = 6 batches an epoch, rendered by 2 workers: interrupted mid-epoch (4), resumed
        # across the epoch's end; WGAN-GP draws its interpolation points and the flip its mirrors from
        # the iteration's stream
        ("shapes", ["loss=wgan_gp", "dataset.flip=true", "dataset.num_workers=2"], 4, 9),
        # a folder of 47 images (43 for training: 5 batches an epoch) decoded by 2 workers, interrupted
        # mid-way through the second epoch (7)
        (
            "image_folder",
            [
                "dataset=image_folder",
                "dataset.root=imgs",
                "dataset.resolution=32",
                "dataset.num_workers=2",
                "dataset.holdout_size=4",
                "dataset.cache_dir=cache",
                "dataset.flip=true",
            ],
            7,
            12,
        ),
        # lambda(t) warmed up (cosine) and on every 2nd iteration: interrupted inside the warm-up, on an
        # iteration without the term
        ("schedule", ["loss.corr_warmup=8", "loss.corr_warmup_shape=cosine", "loss.corr_every=2"], 5, 10),
    ],
)
def test_interrupted_then_resumed_is_bitwise_the_uninterrupted_run(run_script, tmp_path, name, args, first, total):
    if name == "image_folder":
        write_folder(tmp_path / "imgs", n_clean=40, bad=False)
    common = [
        a for a in BASE if a not in args and not (name == "image_folder" and a.startswith("dataset.size="))
    ] + args
    run_script("train.py", *common, f"train.steps={total}", "hydra.run.dir=whole")
    run_script("train.py", *common, f"train.steps={first}", "hydra.run.dir=parts")
    proc = run_script("train.py", *common, f"train.steps={total}", "hydra.run.dir=parts")  # resume=auto
    assert "not resumable" not in proc.stderr + proc.stdout
    assert final_state(tmp_path / "parts")["g_iter"] == total
    assert_bitwise_equal(final_state(tmp_path / "parts"), final_state(tmp_path / "whole"))


@pytest.mark.slow
def test_ddp_interrupted_then_resumed_is_bitwise_the_uninterrupted_run(run_script, tmp_path):
    common = [*BASE, "dataset.size=128", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp_spawn"]
    run_script("train.py", *common, "train.steps=6", "hydra.run.dir=whole")
    run_script("train.py", *common, "train.steps=3", "hydra.run.dir=parts")
    run_script("train.py", *common, "train.steps=6", "hydra.run.dir=parts")
    assert_bitwise_equal(final_state(tmp_path / "parts"), final_state(tmp_path / "whole"))


def test_the_batch_order_depends_on_the_iteration_only():
    whole = IterationBatchSampler(50, 8, seed=3)
    epochs = [list(whole) for _ in range(2)]  # start() = 0 each time: the first epoch again
    assert epochs[0] == epochs[1] and len(epochs[0]) == len(whole) == 6
    assert sorted(i for batch in epochs[0] for i in batch) == sorted({i for b in epochs[0] for i in b})
    at = IterationBatchSampler(50, 8, seed=3, start=lambda: 8)  # iteration 8 = epoch 1, batch 2
    assert list(at) == [b.tolist() for b in whole.epoch_batches(1)[2:, 0]]
    assert whole.epoch_batches(0).tolist() != whole.epoch_batches(1).tolist()
    ranks = [IterationBatchSampler(50, 4, seed=3, rank=r, world_size=2) for r in (0, 1)]
    first = [next(iter(s)) for s in ranks]
    assert not set(first[0]) & set(first[1]) and len(ranks[0]) == 6  # disjoint parts of one global batch


def test_sigterm_to_the_process_group_with_two_workers_saves_last_and_exits_143(tmp_path):
    args = [
        *BASE,
        "train.steps=100000",
        "dataset.num_workers=2",
        "dataset.size=4000",
        "callbacks.checkpoint.every_n_steps=20",
        "hydra.run.dir=run",
    ]
    with open(tmp_path / "out.txt", "w") as out:  # the child writes through its own copy of the handle
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), *args],
            cwd=tmp_path,
            env=script_env(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    checkpoint = tmp_path / "run" / "checkpoints" / "giter_0000020.ckpt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "out.txt").read_text()[-3000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)  # scancel / a shell's job control: every process of the job
    assert proc.wait(timeout=120) == 143, (tmp_path / "out.txt").read_text()[-3000:]
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["ogan"]["g_iter"] >= 20
    assert "stopped by SIGTERM" in (tmp_path / "out.txt").read_text()
