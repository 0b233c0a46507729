"""DDP on CPU (gloo): ranks end identical, gradients are averaged, data and noise are per rank."""

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ogan_pl.run.setup import launch_id
from ogan_pl.utils.distributed import GradientAllReduceDDP, make_strategy
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.seeds import rank_seed
from tests.conftest import ROOT, run_in
from tests.test_cli import TINY

STEPS = 3
DDP_ARGS = [
    *TINY,
    f"train.steps={STEPS}",
    "dataset.size=256",
    "trainer.accelerator=cpu",
    "+callbacks.record._target_=tests.helpers.RecordRankState",
]


def load_ranks(dirpath: Path, world: int = 2) -> list[dict]:
    return [torch.load(dirpath / f"rank{r}.pt", weights_only=False) for r in range(world)]


def check_ranks_agree(ranks: list[dict]) -> None:
    """Identical weights, EMA copies, BatchNorm statistics and optimizer states on every rank;
    disjoint training images; finite losses that differ between ranks (own data, own noise)."""
    first, second = ranks
    assert first["world_size"] == second["world_size"] == 2
    assert first["g_iter"] == second["g_iter"] == STEPS
    keys = first["state_dict"].keys()
    assert any(k.startswith("G_ema.") for k in keys) and any(k.startswith("E_ema.") for k in keys)
    assert any("running_mean" in k for k in keys)
    for key in keys:
        assert torch.equal(first["state_dict"][key], second["state_dict"][key]), key
    for a, b in zip(first["optimizer_states"], second["optimizer_states"], strict=True):
        for pid, state in a["state"].items():
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["state"][pid][name])), (pid, name)
    seen = [set(r["image_sums"].tolist()) for r in ranks]
    assert len(seen[0]) == len(first["image_sums"]) and not seen[0] & seen[1]
    for r in ranks:
        assert r["losses"] and all(math.isfinite(v) for step in r["losses"] for v in step.values())
    assert first["losses"][0]["train/loss_e"] != second["losses"][0]["train/loss_e"]


def check_gradients_averaged(ranks: list[dict]) -> None:
    """The E step and the G step each apply the mean of the ranks' own gradients, of their own
    network only (no gradients of the frozen one, nothing reduced twice)."""
    for step, prefix in enumerate(("E.", "G.")):
        local = [r["local_grads"][step] for r in ranks]
        applied = [r["applied_grads"][step] for r in ranks]
        assert local[0].keys() == applied[0].keys() and all(k.startswith(prefix) for k in local[0])
        for name in local[0]:
            mean = (local[0][name] + local[1][name]) / 2
            assert not torch.allclose(local[0][name], local[1][name]), name
            torch.testing.assert_close(applied[0][name], mean, rtol=1e-5, atol=1e-7)
            assert torch.equal(applied[0][name], applied[1][name]), name


def test_ddp_two_processes_on_cpu(tmp_path):
    run_in(
        tmp_path,
        "train.py",
        *DDP_ARGS,
        "trainer.devices=2",
        f"paths.log_dir={tmp_path / 'logs'}",
        f"+callbacks.record.dirpath={tmp_path}",
    )
    ranks = load_ranks(tmp_path)
    check_ranks_agree(ranks)
    check_gradients_averaged(ranks)
    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 1  # one job, one of everything: run directory, resolved config, log, W&B run
    run = runs[0]
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    for key, value in ranks[0]["state_dict"].items():
        assert torch.equal(saved["state_dict"][key], value), key
    assert sorted(p.name for p in run.glob("*.log")) == ["train.log"]
    assert (run / ".hydra" / "config.yaml").is_file() and (run / "config.yaml").is_file()
    assert len(list(run.glob("wandb/offline-run-*"))) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_nodes_on_cpu(tmp_path):
    """Two torchrun agents ("nodes", one process each) meeting at a localhost rendezvous."""
    port = free_port()
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path),
        "WANDB_SILENT": "true",
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": str(ROOT),
    }
    args = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc_per_node=1",
        "--rdzv_backend=c10d",
        f"--rdzv_endpoint=127.0.0.1:{port}",
        "--rdzv_id=ogan-test",
        str(ROOT / "train.py"),
        *DDP_ARGS,
        "trainer.devices=1",
        "trainer.num_nodes=2",
        f"paths.log_dir={tmp_path / 'logs'}",
        f"+callbacks.record.dirpath={tmp_path}",
    ]
    nodes = [
        subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert all(node.returncode == 0 for node in nodes), "\n".join(o[-3000:] for o in outputs)
    ranks = load_ranks(tmp_path)
    check_ranks_agree(ranks)
    check_gradients_averaged(ranks)
    # both nodes agree on one run directory, named after the rendezvous id
    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert [p.name for p in runs] == ["torchrun-ogan-test"]
    assert (runs[0] / "checkpoints" / "last.ckpt").is_file()


# ----------------------------------------------------------------------------- units
def test_rank_seeds_differ_per_rank_and_step_and_repeat():
    seeds = {rank_seed(42, rank, step) for rank in range(4) for step in range(100)}
    assert len(seeds) == 400 and all(0 <= s < 2**63 for s in seeds)
    assert rank_seed(42, 1, 7) == rank_seed(42, 1, 7) != rank_seed(43, 1, 7)
    assert rank_seed(42, 0, 0, stream=1) != rank_seed(42, 0, 0)


@pytest.mark.parametrize(
    "strategy,devices,nodes,expected",
    [
        ("auto", 1, 1, "auto"),
        ("auto", 2, 1, "popen"),
        ("auto", "0,1", 1, "popen"),
        ("auto", 1, 2, "popen"),
        ("auto", -1, 1, "popen"),
        ("ddp", 1, 1, "popen"),
        ("ddp_spawn", 2, 1, "spawn"),
        ("single_device", 1, 1, None),
    ],
)
def test_every_ddp_flavour_becomes_gradient_all_reduce(strategy, devices, nodes, expected):
    made = make_strategy(strategy, devices, nodes)
    if expected in ("popen", "spawn"):
        assert isinstance(made, GradientAllReduceDDP) and made.start_method == expected
    else:
        assert made == strategy


def test_unsupported_strategy_is_one_clear_error():
    with pytest.raises(UserError, match=r"trainer.strategy='fsdp' is not supported"):
        make_strategy("fsdp", 2, 1)


@pytest.mark.parametrize(
    "env,expected",
    [
        ({}, None),
        ({"TORCHELASTIC_RUN_ID": "none"}, None),
        ({"TORCHELASTIC_RUN_ID": "abc"}, "torchrun-abc"),
        ({"SLURM_JOB_ID": "77"}, "slurm-77"),
        ({"SLURM_JOB_ID": "78", "SLURM_ARRAY_JOB_ID": "70", "SLURM_ARRAY_TASK_ID": "3"}, "slurm-70_3"),
    ],
)
def test_launch_id_names_the_shared_run_directory(monkeypatch, env, expected):
    for var in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert launch_id() == expected
