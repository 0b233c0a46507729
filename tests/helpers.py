"""Test-only callbacks, importable by train.py subprocesses (PYTHONPATH=repo root)."""

import pytorch_lightning as pl
import torch

from ogan_pl.utils.io import atomic_torch_save


def _state(trainer, pl_module) -> dict:
    return {
        "g_iter": pl_module.g_iter,
        "images_seen": pl_module.images_seen,
        "global_step": trainer.global_step,
        "state_dict": {k: v.detach().clone() for k, v in pl_module.state_dict().items()},
        "optimizer_states": [opt.state_dict() for opt in trainer.optimizers],
    }


class RecordStateAtStart(pl.Callback):
    """Saves the module's and optimizers' state as training (re)starts, to compare with a checkpoint."""

    def __init__(self, path: str):
        self.path = path

    def on_train_start(self, trainer, pl_module):
        atomic_torch_save(_state(trainer, pl_module), self.path)  # tests poll this file


class RecordRankState(pl.Callback):
    """Under DDP: each rank saves `dirpath`/rank{N}.pt at the end of training: its final state, a
    fingerprint of every training image it saw, and its logged losses at every step."""

    def __init__(self, dirpath: str, n_grad_steps: int = 2):
        self.dirpath = dirpath
        self.n_grad_steps = n_grad_steps
        self.image_sums: list[torch.Tensor] = []
        self.losses: list[dict] = []
        self.local_grads: list[dict] = []  # after backward: this rank's own gradients
        self.applied_grads: list[dict] = []  # before the optimizer step: what the step uses

    @staticmethod
    def _grads(pl_module) -> dict:
        # the network being updated: the other one is frozen (requires_grad off) during the step
        return {
            n: p.grad.detach().clone()
            for n, p in pl_module.named_parameters()
            if p.grad is not None and p.requires_grad
        }

    def on_after_backward(self, trainer, pl_module):
        if len(self.local_grads) < self.n_grad_steps:
            self.local_grads.append(self._grads(pl_module))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if len(self.applied_grads) < self.n_grad_steps:
            self.applied_grads.append(self._grads(pl_module))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.image_sums.append(batch["image"].double().flatten(1).sum(1).cpu())
        self.losses.append({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")})

    def on_train_end(self, trainer, pl_module):
        torch.save(
            {
                **_state(trainer, pl_module),
                "rank": trainer.global_rank,
                "world_size": trainer.world_size,
                "image_sums": torch.cat(self.image_sums),
                "losses": self.losses,
                "local_grads": self.local_grads,
                "applied_grads": self.applied_grads,
            },
            f"{self.dirpath}/rank{trainer.global_rank}.pt",
        )


def read_wandb_history(run_file) -> list[dict]:
    """History rows of an offline W&B run (`run-*.wandb`): a 7-byte header, then a LevelDB-style
    log of 32 KiB blocks whose chunks (checksum 4, length 2, type 1) hold protobuf Records."""
    import json
    from pathlib import Path

    from wandb.proto import wandb_internal_pb2

    data, block, pos = Path(run_file).read_bytes(), 32768, 7
    assert data[:4] == b":W&B", "not a W&B run file"
    records, pending = [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer padding
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        if kind == 0:  # zero padding up to the next block
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            records.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            records.append(pending + chunk)
    rows = []
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {(item.key or "/".join(item.nested_key)): json.loads(item.value_json) for item in record.history.item}
            )
    return rows


def write_random_inception_weights(path, seed: int = 0):
    """A state dict with the keys and shapes of torch-fidelity's Inception-v3 and random values.

    The network is built with its weight loading stubbed out (there is no file to load yet), so
    the real construction code defines the keys; nothing is downloaded.
    """
    from pathlib import Path
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    torch.manual_seed(seed)
    with (
        mock.patch.object(tf_inception, "load_state_dict_from_url", lambda *a, **k: {}),
        mock.patch.object(tf_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None),
    ):
        net = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    state = net.state_dict()
    for key, value in state.items():  # He-initialised convs and identity BatchNorm: features neither vanish nor explode
        if key.endswith("conv.weight"):
            torch.nn.init.kaiming_normal_(value)
        elif key.endswith("running_var"):
            value.fill_(1.0)
        elif key.endswith("running_mean"):
            value.zero_()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


class ForbidDeviceSync(pl.Callback):
    """Makes any host-device synchronisation inside a training step an error (CUDA only)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        torch.cuda.set_sync_debug_mode("error")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        torch.cuda.set_sync_debug_mode("default")


class DestroyEncoder(pl.Callback):
    """Test-only: from generator iteration `at` on, E's weights (and their average, which the health
    measures read) are drawn afresh after every iteration: an encoder that died and stays dead."""

    def __init__(self, at: int):
        self.at = at

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if pl_module.g_iter < self.at:
            return
        torch.manual_seed(1234 + pl_module.g_iter)
        for module in pl_module.E.modules():
            if hasattr(module, "reset_parameters") and module is not pl_module.E:
                module.reset_parameters()
        if pl_module.E_ema is not None:
            pl_module.E_ema.module.load_state_dict(pl_module.E.state_dict())
