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
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if kind == 0:  # zero padding up to the next block
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
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
            rows.append({(item.key or "/".join(item.nested_key)): json.loads(item.value_json)
                         for item in record.history.item})
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
    with mock.patch.object(tf_inception, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(tf_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None):
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
