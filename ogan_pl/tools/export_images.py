"""`ogan-export-images DATASET OUT` (or `python -m ogan_pl.tools.export_images`): a registered dataset
written as PNG files, one folder per label when it has labels (OUT/<label>/<split>_<index>.png), so
that it can be trained through `dataset=image_folder` like a user's own images:

    ogan-export-images digits data/digits_png --split all
    python train.py dataset=image_folder dataset.root=data/digits_png dataset.resolution=32 dataset.channels=1
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from ogan_pl.parts.plugins import load_plugins
from ogan_pl.parts.registry import DATASETS
from ogan_pl.run.cli import dataset_defaults
from ogan_pl.run.exits import exit_with
from ogan_pl.run.outputs import check_output, staged_output
from ogan_pl.utils.errors import UserError


def export(datamodule, out: Path, splits: tuple[str, ...]) -> int:
    """Every image of `splits` as 8-bit PNG (grayscale for one channel); returns how many were written."""
    datamodule.setup()
    written = 0
    for split in splits:
        dataset = datamodule.holdout_set if split == "holdout" else datamodule.train_set
        for index in range(len(dataset)):
            item = dataset[index]
            image = np.asarray(item["image"]).transpose(1, 2, 0)
            folder = out / str(int(item["label"])) if "label" in item else out
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(folder / f"{split}_{index:06d}.png")
            written += 1
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ogan-export-images", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a registered dataset name (ogan-parts lists them), e.g. digits or shapes")
    parser.add_argument("out", type=Path, help="folder to write the PNG files into (must be empty or new)")
    parser.add_argument("--split", choices=("train", "holdout", "all"), default="all")
    parser.add_argument("--resolution", type=int, default=None, help="default: the dataset's own")
    args = parser.parse_args(argv)
    try:
        load_plugins()
        check_output(args.out, "ogan-export-images", key="out")
        config = {**dataset_defaults(args.dataset), "_name_": args.dataset}
        if args.resolution:
            config["resolution"] = args.resolution
        datamodule = DATASETS.build(config, "dataset")
        with staged_output(args.out, "ogan-export-images", key="out") as out:
            n = export(datamodule, out, ("train", "holdout") if args.split == "all" else (args.split,))
    except UserError as err:
        exit_with(str(err))
    print(f"wrote {n} images to {args.out}")


if __name__ == "__main__":
    main()
