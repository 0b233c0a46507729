"""Atomic checkpoint writes: a save that dies half-way leaves the previous file intact."""

import pytest
import torch

from ogan_pl.checkpoints import AtomicCheckpointIO


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, path)

    def dies_half_way(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt  # like a kill during the write

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": torch.tensor(2)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"].item() == 1
    io.save_checkpoint({"step": torch.tensor(3)}, path)
    assert torch.load(path, weights_only=True)["step"].item() == 3
    assert [p.name for p in tmp_path.iterdir() if p.name != ".last.ckpt.tmp"] == ["last.ckpt"]
