"""`ogan-export ckpt=PATH format=onnx|torchscript output=DIR` (or `python -m ogan_pl.tools.export`):
the model's generator, encoder and latent as standalone TorchScript or ONNX files, each checked
against PyTorch after it is written, with export.json describing them (ogan_pl.export)."""

import json
from pathlib import Path

from omegaconf import DictConfig

from ogan_pl.checkpoints import checkpoint_name
from ogan_pl.config.schema import ModelCommandConfig
from ogan_pl.edits import model_fingerprint
from ogan_pl.export import FORMATS, MIN_OPSET, TOLERANCE, export, require_onnx
from ogan_pl.registry.values import at_least, one_of
from ogan_pl.run.cli import run
from ogan_pl.run.models import open_model
from ogan_pl.run.outputs import check_output, staged_output
from ogan_pl.utils.io import atomic_write, now_iso


class ExportConfig(ModelCommandConfig):
    """conf/export.yaml."""

    format: one_of(FORMATS)
    output: str
    overwrite: bool
    opset: at_least(MIN_OPSET, "the oldest opset the exports are tested with")


def describe(model, cfg: DictConfig, parts: dict) -> dict:
    """export.json: what a program that loads the files needs to know."""
    dataset = model.hparams.config["dataset"]
    return {
        "format": cfg.format,
        "opset": cfg.opset if cfg.format == "onnx" else None,
        "parts": parts,
        "resolution": dataset["resolution"],
        "channels": dataset["channels"],
        "z_dim": model.z_dim,
        "recon_scale": model.recon_scale,
        "image_range": [-1.0, 1.0],
        "layout": "NCHW, float32",
        "noise": "z ~ N(0, I), shape (batch, z_dim)",
        "latent": "s * N(E(x)): E's code standardized per image, times recon_scale; generator(latent) reconstructs x",
        "weights": "EMA" if cfg.use_ema and model.has_ema else "raw",
        "tolerance": TOLERANCE,
        "ckpt": checkpoint_name(cfg.ckpt),
        "g_iter": model.g_iter,
        "model": model_fingerprint(model),
        "time": now_iso(),
    }


def export_model(cfg: DictConfig) -> dict:
    check_output(Path(cfg.output), "ogan-export", overwrite=cfg.overwrite)  # before any work
    if cfg.format == "onnx":
        require_onnx()
    model = open_model(cfg.ckpt, cfg.device)
    with staged_output(cfg.output, "ogan-export", overwrite=cfg.overwrite) as out:
        parts = export(model, cfg.format, out, cfg.use_ema, cfg.opset)
        info = describe(model, cfg, parts)
        atomic_write(out / "export.json", lambda f: f.write((json.dumps(info, indent=2) + "\n").encode()))
    worst = max(p["max_relative_difference"] for p in parts.values())
    print(
        f"{', '.join(p['file'] for p in parts.values())} written to {cfg.output} ({cfg.format}); "
        f"largest difference from PyTorch {worst:.1e} (relative)"
    )
    return info


def main() -> None:
    """The `ogan-export` console script."""
    run("export", export_model, ExportConfig)


if __name__ == "__main__":
    main()
