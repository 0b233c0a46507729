"""Test-only callbacks, importable by train.py subprocesses (PYTHONPATH=repo root)."""
import pytorch_lightning as pl
import torch


class RecordStateAtStart(pl.Callback):
    """Saves the module's and optimizers' state as training (re)starts, to compare with a checkpoint."""

    def __init__(self, path: str):
        self.path = path

    def on_train_start(self, trainer, pl_module):
        torch.save({
            "g_iter": pl_module.g_iter,
            "images_seen": pl_module.images_seen,
            "global_step": trainer.global_step,
            "state_dict": {k: v.clone() for k, v in pl_module.state_dict().items()},
            "optimizer_states": [opt.state_dict() for opt in trainer.optimizers],
        }, self.path)
