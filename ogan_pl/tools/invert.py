"""`ogan-invert ckpt=PATH input=DIR_OR_IMAGE output=DIR [steps=100 ...]` (or `python -m
ogan_pl.tools.invert`): hybrid inversion of your own images, batched, with a progress bar.

Writes to `output`: codes.npy (N, z_dim) and files.txt (the image of each row), reconstructions/
(G(z) of each image: its name, with .png added unless it is one), grids/ (rows of original | encoder alone | inverted) and
inversions.jsonl (one line per image: PSNR and SSIM of the encoder alone and of the inversion, the
final loss, the steps, milliseconds per image, and the protocol), settings.json and manifest.json.
Interrupted, `resume=true` finishes the rest (ogan_pl.run.outputs).
"""

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from torchvision.utils import make_grid, save_image

from ogan_pl.checkpoints import checkpoint_name
from ogan_pl.config.schema import ModelCommandConfig, Section
from ogan_pl.data.convert import to_unit
from ogan_pl.data.user_images import image_files, read_images
from ogan_pl.edits import model_fingerprint
from ogan_pl.method.inversion import INITS
from ogan_pl.metrics.encoder import image_quality
from ogan_pl.metrics.perceptual import PERCEPTUAL, build_perceptual
from ogan_pl.registry.values import NonNegativeFinite, NonNegativeInt, PositiveFinite, PositiveInt, one_of
from ogan_pl.run.cli import run
from ogan_pl.run.models import checkpoint_datamodule, open_model
from ogan_pl.run.outputs import check_output, staged_output
from ogan_pl.utils.console import image_progress
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import atomic_write, now_iso


class LpipsSection(Section):
    vgg: str
    weights: str


class InvertConfig(ModelCommandConfig):
    """conf/invert.yaml."""

    batch_size: PositiveInt
    input: str
    output: str
    overwrite: bool
    resume: bool
    resize: bool
    steps: NonNegativeInt
    lr: PositiveFinite
    init: one_of(INITS)
    perceptual: one_of(PERCEPTUAL)
    perceptual_weight: NonNegativeFinite
    encoder_weight: NonNegativeFinite
    seed: NonNegativeInt
    lpips: LpipsSection


def reconstruction_names(names: list[str]) -> list[str]:
    """The reconstruction file of each input: its own name if a PNG, else the name with .png added, so
    that x.png and x.bmp keep one each."""
    for name in names:
        if "\n" in name or "\r" in name:
            raise UserError(f"{name!r}: a file name with a line break cannot be listed in files.txt; rename it")
    targets = [name if name.lower().endswith(".png") else name + ".png" for name in names]
    seen: dict[str, str] = {}
    for name, target in zip(names, targets, strict=True):
        if target.lower() in seen:
            raise UserError(f"{seen[target.lower()]} and {name} would share the reconstruction {target}; rename one")
        seen[target.lower()] = name
    return targets


def check_finite(result, cfg: DictConfig, first: int, n: int) -> None:
    """A diverged inversion is never written: one line naming the settings that drive the steps."""
    finite = [torch.isfinite(t).all() for t in (result.z, result.images, result.losses[-1])]
    if not all(bool(f) for f in finite):
        raise UserError(
            f"the inversion diverged on images {first + 1}-{first + n} (codes or loss not finite): "
            f"lower lr={cfg.lr}, perceptual_weight={cfg.perceptual_weight} or "
            f"encoder_weight={cfg.encoder_weight}; nothing was written"
        )


def finished_work(out: Path) -> tuple[list[str], list[np.ndarray], list[dict]]:
    """What a resumed run starts from: the names, code rows and JSON lines of the images finished in
    `out`. files.txt is written last for each batch, so its rows are the finished ones."""
    listing = out / "files.txt"
    if not listing.is_file():
        return [], [], []
    names = listing.read_bytes().decode("utf-8", "surrogateescape").splitlines()
    codes = list(np.load(out / "codes.npy", allow_pickle=False)[: len(names)])
    if len(codes) < len(names):
        raise UserError(f"{out}: codes.npy holds fewer rows than files.txt names; overwrite=true starts afresh")
    by_name = {}
    for line in (out / "inversions.jsonl").read_text("utf-8", "surrogateescape").splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # the line a killed run was writing
            continue
        by_name.setdefault(record.get("file"), record)
    return names, codes, [by_name[name] for name in names if name in by_name]


def save_progress(out: Path, names: list[str], codes: list[np.ndarray]) -> None:
    """codes.npy, then files.txt: a run killed between the two has one code row too many, never one
    too few. Names as the file system gave them: a non-UTF-8 name keeps its bytes (surrogate escapes)."""
    atomic_write(out / "codes.npy", lambda f: np.save(f, np.stack(codes)))
    listing = ("\n".join(names) + "\n").encode("utf-8", "surrogateescape")
    atomic_write(out / "files.txt", lambda f: f.write(listing))


def invert_images(cfg: DictConfig) -> dict:
    check_output(Path(cfg.output), "ogan-invert", overwrite=cfg.overwrite, resume=cfg.resume)  # before any work
    files = image_files(cfg.input)
    root = Path(cfg.input)
    all_names = [str(f.relative_to(root)) if root.is_dir() else f.name for f in files]
    reconstruction_names(all_names)  # names that cannot each have their own output: refused before any work
    model = open_model(cfg.ckpt, cfg.device)
    device = model.device
    protocol = {
        k: cfg[k]
        for k in ("steps", "lr", "init", "perceptual", "perceptual_weight", "encoder_weight", "seed", "use_ema")
    }
    settings = {"model": model_fingerprint(model), "resize": cfg.resize, **protocol}
    with staged_output(cfg.output, "ogan-invert", overwrite=cfg.overwrite, resume=cfg.resume, settings=settings) as out:
        done, codes, records = finished_work(out)
        finished = set(done)
        todo = [i for i, name in enumerate(all_names) if name not in finished]
        names = [all_names[i] for i in todo]
        targets = dict(zip(done + names, reconstruction_names(done + names), strict=True))
        resolution, channels = (model.hparams.config["dataset"][k] for k in ("resolution", "channels"))
        images = read_images([files[i] for i in todo], resolution, channels, cfg.resize)  # all checked first
        datamodule = (
            checkpoint_datamodule(model, cfg.paths.cache_dir) if cfg.perceptual == "classifier" and names else None
        )
        perceptual = (
            build_perceptual(cfg.perceptual, model, datamodule, cfg.paths.cache_dir, cfg.lpips.vgg, cfg.lpips.weights)
            if names
            else None
        )
        (out / "reconstructions").mkdir(exist_ok=True)
        (out / "grids").mkdir(exist_ok=True)
        atomic_write(
            out / "inversions.jsonl",  # the lines of the finished images only
            lambda f: f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()),
        )
        with image_progress() as start_progress, open(out / "inversions.jsonl", "a") as jsonl:
            advance = start_progress(
                f"inverting {len(names)} images, {cfg.steps} steps" + (f" ({len(done)} done earlier)" if done else ""),
                len(names),
            )
            for first in range(0, len(names), cfg.batch_size):
                batch = images[first : first + cfg.batch_size].to(device)
                started = time.perf_counter()
                result = model.invert(
                    batch,
                    steps=cfg.steps,
                    lr=cfg.lr,
                    init=cfg.init,
                    perceptual=perceptual,
                    perceptual_weight=cfg.perceptual_weight,
                    encoder_weight=cfg.encoder_weight,
                    seed=cfg.seed + todo[first],
                    use_ema=cfg.use_ema,
                )
                ms = 1000 * (time.perf_counter() - started) / len(batch)
                check_finite(result, cfg, todo[first], len(batch))
                encoder_only = model.reconstruct(batch, cfg.use_ema)
                psnr, ssim = image_quality(result.images, batch)
                psnr_e, ssim_e = image_quality(encoder_only, batch)
                losses = result.losses[-1].cpu()
                for i in range(len(batch)):
                    name = names[first + i]
                    target = out / "reconstructions" / targets[name]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    save_image(to_unit(result.images[i]), target)
                    record = {
                        "file": name,
                        "psnr": round(psnr[i].item(), 4),
                        "ssim": round(ssim[i].item(), 5),
                        "psnr_encoder": round(psnr_e[i].item(), 4),
                        "ssim_encoder": round(ssim_e[i].item(), 5),
                        "loss": round(losses[i].item(), 6),
                        "steps": cfg.steps,
                        "ms_per_image": round(ms, 3),
                        "ckpt": checkpoint_name(cfg.ckpt),
                        "protocol": protocol,
                        "time": now_iso(),
                    }
                    jsonl.write(json.dumps(record, sort_keys=True) + "\n")
                    records.append(record)
                rows = torch.stack([batch.cpu(), encoder_only.cpu(), result.images.cpu()], dim=1).flatten(0, 1)
                save_image(
                    make_grid(to_unit(rows), nrow=3 * min(4, len(batch)), padding=2),
                    out / "grids" / f"grid_{len(done) + first:06d}.png",
                )
                jsonl.flush()
                os.fsync(jsonl.fileno())
                codes += list(result.z.cpu().numpy())
                save_progress(out, done + names[: first + len(batch)], codes)
                advance(len(batch))
    summary = {k: float(np.mean([r[k] for r in records])) for k in ("psnr", "ssim", "psnr_encoder", "ssim_encoder")}
    skipped = f" ({len(done)} of them finished earlier)" if done else ""
    print(
        f"{len(records)} images inverted into {cfg.output}{skipped}: PSNR {summary['psnr']:.2f} dB (encoder alone "
        f"{summary['psnr_encoder']:.2f}), SSIM {summary['ssim']:.3f} (encoder alone {summary['ssim_encoder']:.3f})"
    )
    return summary


def main() -> None:
    """The `ogan-invert` console script."""
    run("invert", invert_images, InvertConfig)


if __name__ == "__main__":
    main()
