"""`ogan-directions ckpt=PATH method=class_mean target=7 output=FILE` (or `python -m
ogan_pl.tools.directions`): fit editing directions in code space and save them with their provenance."""

import sys
from pathlib import Path

import torch
from omegaconf import DictConfig

from ogan_pl.checkpoints import checkpoint_name
from ogan_pl.config.schema import ModelCommandConfig
from ogan_pl.data.user_images import image_files, read_images, read_labels
from ogan_pl.edits import dataset_labels, fit_directions, model_fingerprint, save_directions
from ogan_pl.method.directions import METHODS, SUPERVISED
from ogan_pl.metrics.encoder import latent_all
from ogan_pl.module import OGAN
from ogan_pl.registry.values import PositiveInt, one_of
from ogan_pl.run.cli import run
from ogan_pl.run.models import checkpoint_datamodule, open_model
from ogan_pl.run.outputs import check_writable
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import now_iso


class DirectionsConfig(ModelCommandConfig):
    """conf/directions.yaml."""

    batch_size: PositiveInt
    output: str
    overwrite: bool
    method: one_of(METHODS)
    attribute: str
    target: str | int | None
    source: str | int | None
    k: PositiveInt
    input: str | None
    labels: str | None
    resize: bool
    n_images: PositiveInt | None


def labelled_codes(cfg: DictConfig, model: OGAN):
    """(codes, labels or None, where they came from) for the directions' fit."""
    dataset = model.hparams.config["dataset"]
    if cfg.input is not None:
        files = image_files(cfg.input)
        images = read_images(files, dataset["resolution"], dataset["channels"], cfg.resize)
        labels = read_labels(cfg.labels, files, Path(cfg.input)) if cfg.labels is not None else None
        return (
            latent_all(model, images, cfg.batch_size, cfg.use_ema),
            labels,
            {"input": str(cfg.input), "labels": cfg.labels},
        )
    if cfg.labels is not None:
        raise UserError("labels=CSV goes with input=DIR (the images it labels)")
    datamodule = checkpoint_datamodule(model, cfg.paths.cache_dir)
    datamodule.setup()
    n = len(datamodule.train_set) if cfg.n_images is None else min(cfg.n_images, len(datamodule.train_set))
    if cfg.n_images is not None and cfg.n_images > n:
        print(
            f"note: n_images={cfg.n_images} but the training split holds {n} images: using all {n}",
            file=sys.stderr,
            flush=True,
        )
    batch = datamodule.first_batch("train", n)
    labels = dataset_labels(batch, cfg.attribute) if cfg.method in SUPERVISED else None
    return (
        latent_all(model, batch["image"], cfg.batch_size, cfg.use_ema),
        labels,
        {"dataset": dataset["_name_"], "split": "train", "n_images": n, "attribute": cfg.attribute},
    )


def directions(cfg: DictConfig) -> dict:
    if Path(cfg.output).exists() and not Path(cfg.output).is_file():
        raise UserError(
            f"output={cfg.output} is a folder or a device; give the directions file's name (e.g. output=to7.pt)"
        )
    if Path(cfg.output).exists() and not cfg.overwrite:
        raise UserError(f"output={cfg.output} exists; give another name, or overwrite=true to replace it")
    check_writable(Path(cfg.output))
    model = open_model(cfg.ckpt, cfg.device)
    codes, labels, source = (None, None, {}) if cfg.method == "sefa" else labelled_codes(cfg, model)
    found, names = fit_directions(model, cfg.method, codes, labels, cfg.target, cfg.source, cfg.k, cfg.use_ema)
    provenance = {
        "ckpt": checkpoint_name(cfg.ckpt),
        "g_iter": model.g_iter,
        "model": model_fingerprint(model),
        "method": cfg.method,
        "target": cfg.target,
        "source": cfg.source,
        "use_ema": cfg.use_ema,
        "time": now_iso(),
        "codes": "z = s * N(E(x))",
        **source,
    }
    try:
        path = save_directions(cfg.output, found, names, provenance)
    except OSError as err:
        raise UserError(f"output={cfg.output}: cannot write there ({err.strerror})") from None
    norms = ", ".join(f"{n}" for n in names)
    print(f"{len(names)} direction(s) ({norms}) written to {path}")
    return {"file": str(path), "names": names, "norm": float(torch.linalg.vector_norm(found, dim=1).mean())}


def main() -> None:
    """The `ogan-directions` console script."""
    run("directions", directions, DirectionsConfig)


if __name__ == "__main__":
    main()
