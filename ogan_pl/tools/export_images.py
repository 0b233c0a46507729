"""`ogan-export-images DATASET OUT` (or `python -m ogan_pl.tools.export_images`): a registered dataset
written as PNG files, one folder per label when it has labels (OUT/<label>/<split>_<index>.png), so
that it can be trained through `dataset=image_folder` like a user's own images:

    ogan-export-images digits data/digits_png --split all
    ogan-export-images lsun_church data/church_png dataset.root=/data/church_outdoor_train_lmdb
    python train.py dataset=image_folder dataset.root=data/digits_png dataset.resolution=32 dataset.channels=1

OUT appears whole or not at all (ogan_pl.run.outputs); `--overwrite` replaces an earlier export, and
`--resume` finishes an interrupted one.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from ogan_pl.registry.registries import DATASETS
from ogan_pl.run.cli import dataset_defaults, run_plain
from ogan_pl.run.outputs import FLAG_OPTIONS, check_output, staged_output
from ogan_pl.utils.console import image_progress
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import atomic_write

TOOL = "ogan-export-images"


def save_png(image: np.ndarray, path: Path) -> None:
    """One image, whole or not at all (a resumed export trusts every PNG it finds)."""
    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    atomic_write(path, lambda f: picture.save(f, format="PNG"), sync=False)


def export(datamodule, out: Path, splits: tuple[str, ...]) -> tuple[int, int]:
    """Every image of `splits` as 8-bit PNG (grayscale for one channel); returns (written, found
    already written by the run this one resumes)."""
    datamodule.setup()
    for stale in out.rglob(".*.tmp"):  # the image a killed run was writing
        stale.unlink()
    done = {p.relative_to(out) for p in out.rglob("*.png")}
    written = 0
    sets = [(split, datamodule.holdout_set if split == "holdout" else datamodule.train_set) for split in splits]
    with image_progress() as start_progress:
        advance = start_progress(f"exporting {' and '.join(splits)}", sum(len(d) for _, d in sets))
        for split, dataset in sets:
            for index in range(len(dataset)):
                item = dataset[index]
                name = Path(str(int(item["label"])) if "label" in item else "") / f"{split}_{index:06d}.png"
                if name not in done:
                    save_png(np.asarray(item["image"]).transpose(1, 2, 0), out / name)
                    written += 1
                advance(1)
    return written, len(done)


def export_command(args: argparse.Namespace) -> None:
    check_output(args.out, TOOL, key="out", overwrite=args.overwrite, resume=args.resume, options=FLAG_OPTIONS)
    # a dataset file may name a registered class of another name (lsun_church: the lsun class)
    bad = [o for o in args.overrides if not o.startswith("dataset.") or "=" not in o]
    if bad:
        raise UserError(f"{bad[0]}: give the dataset's settings as dataset.KEY=VALUE (e.g. dataset.root=/data/x)")
    config = {"_name_": args.dataset, **dataset_defaults(args.dataset, args.overrides)}
    if args.resolution:
        config["resolution"] = args.resolution
    datamodule = DATASETS.build(config, "dataset")
    settings = {"dataset": config, "split": args.split}
    with staged_output(
        args.out, TOOL, key="out", overwrite=args.overwrite, resume=args.resume, settings=settings, options=FLAG_OPTIONS
    ) as out:
        n, earlier = export(datamodule, out, ("train", "holdout") if args.split == "all" else (args.split,))
    print(f"wrote {n} images to {args.out}" + (f" ({earlier} written earlier)" if earlier else ""))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=TOOL, description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a registered dataset name (ogan-parts lists them), e.g. digits or shapes")
    parser.add_argument("out", type=Path, help="folder to write the PNG files into (must be empty or new)")
    parser.add_argument("overrides", nargs="*", help="the dataset's settings, as in training: dataset.root=PATH")
    parser.add_argument("--split", choices=("train", "holdout", "all"), default="all")
    parser.add_argument("--resolution", type=int, default=None, help="default: the dataset's own")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in OUT whole")
    parser.add_argument("--resume", action="store_true", help="finish an interrupted export into OUT")
    args = parser.parse_args(argv)
    run_plain(lambda: export_command(args), TOOL)


if __name__ == "__main__":
    main()
