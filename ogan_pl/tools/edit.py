"""`ogan-edit ckpt=PATH directions=FILE output=DIR [index=0 strengths=[...] input=DIR]` (or `python -m
ogan_pl.tools.edit`): edit grids along one direction, rows the images, columns the strengths."""

import sys
from pathlib import Path

import torch
from omegaconf import DictConfig
from torchvision.utils import make_grid, save_image

from ogan_pl.config.schema import ModelCommandConfig
from ogan_pl.data.convert import to_unit
from ogan_pl.data.user_images import image_files, read_images
from ogan_pl.edits import fitted_elsewhere, load_directions
from ogan_pl.registry.values import NonNegativeInt, PositiveInt, finite, non_empty
from ogan_pl.run.cli import run
from ogan_pl.run.models import checkpoint_datamodule, open_model
from ogan_pl.run.outputs import check_output, staged_output
from ogan_pl.utils.errors import UserError


class EditConfig(ModelCommandConfig):
    """conf/edit.yaml."""

    batch_size: PositiveInt
    directions: str
    output: str
    overwrite: bool
    index: NonNegativeInt
    strengths: non_empty(finite(), "[-3,-1.5,0,1.5,3]")
    input: str | None
    resize: bool
    n_images: PositiveInt
    invert_steps: NonNegativeInt


def edit(cfg: DictConfig) -> dict:
    check_output(Path(cfg.output), "ogan-edit", overwrite=cfg.overwrite)  # before any work
    model = open_model(cfg.ckpt, cfg.device)
    device = model.device
    found, names, provenance = load_directions(cfg.directions, model.z_dim)
    if (warning := fitted_elsewhere(provenance, model)) is not None:
        print(f"warning: {cfg.directions}: {warning}", file=sys.stderr, flush=True)
    if cfg.index >= len(found):
        raise UserError(f"index={cfg.index}: {cfg.directions} holds {len(found)} direction(s) ({', '.join(names)})")
    dataset = model.hparams.config["dataset"]
    if cfg.input is not None:
        images = read_images(image_files(cfg.input), dataset["resolution"], dataset["channels"], cfg.resize)
    else:
        datamodule = checkpoint_datamodule(model, cfg.paths.cache_dir)
        images = datamodule.holdout_batch(cfg.n_images)["image"]
        if len(images) < cfg.n_images:
            print(
                f"note: n_images={cfg.n_images} but the held-out split holds {len(images)} images: using all "
                f"{len(images)}",
                file=sys.stderr,
                flush=True,
            )
    rows = []
    for first in range(0, len(images), cfg.batch_size):
        batch = images[first : first + cfg.batch_size].to(device)
        z = model.invert(batch, steps=cfg.invert_steps, use_ema=cfg.use_ema).z if cfg.invert_steps else None
        edited = model.edit(batch, found[cfg.index], list(cfg.strengths), z=z, use_ema=cfg.use_ema)
        rows.append(torch.cat([batch[:, None], edited], dim=1).cpu())  # first column: the image itself
    grid = torch.cat(rows)
    name = f"edit_{names[cfg.index].replace(':', '_').replace('->', '_to_').replace('/', '_')}.png"
    with staged_output(cfg.output, "ogan-edit", overwrite=cfg.overwrite) as out:
        save_image(make_grid(to_unit(grid.flatten(0, 1)), nrow=grid.shape[1], padding=2), out / name)
    target = Path(cfg.output) / name
    print(f"{len(images)} images x {len(cfg.strengths)} strengths along {names[cfg.index]}: {target}")
    return {"grid": str(target), "direction": names[cfg.index], "provenance": provenance}


def main() -> None:
    """The `ogan-edit` console script."""
    run("edit", edit, EditConfig)


if __name__ == "__main__":
    main()
