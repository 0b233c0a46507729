"""A user's own images for the encoder tools (`ogan-invert`, `ogan-edit`): a folder or one file,
checked against the model's image shape, and the optional `file,attribute` labels CSV."""

import csv
from pathlib import Path

import numpy as np
import torch

from ogan_pl.data.convert import to_model_range
from ogan_pl.data.decode import DECODE_ERRORS, Preprocess, decode, open_image
from ogan_pl.data.sources import IMAGE_EXTENSIONS
from ogan_pl.utils.errors import UserError


def image_files(path: str | Path) -> list[Path]:
    """The images of a folder (recursively, sorted) or the one image file `path`."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"input={path} does not exist; give a folder of images or one image file")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise UserError(f"input={path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


#: what a PIL mode is, for messages about an image that is not the model's kind
MODE_NAMES = {
    "1": "black-and-white",
    "P": "palette",
    "PA": "palette with alpha",
    "LA": "grayscale with alpha",
    "RGBA": "RGB with alpha",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "F": "32-bit float grayscale",
}


def is_grayscale(mode: str) -> bool:
    return mode in ("1", "L", "LA", "F") or mode.startswith("I")  # I, I;16, I;16B, ...: integer grayscale


def shape_problem(size: tuple[int, int], mode: str, resolution: int, channels: int) -> str | None:
    """What keeps an image of PIL `size` and `mode` from being a model input as it is ("is 64x64 RGB;
    the model takes 32x32 grayscale images"), or None if nothing does."""
    if size == (resolution, resolution) and (channels == 1) == is_grayscale(mode):
        return None
    kind = "grayscale" if channels == 1 else "RGB"
    named = f"{mode} ({MODE_NAMES[mode]})" if mode in MODE_NAMES else mode
    return f"is {size[0]}x{size[1]} {named}; the model takes {resolution}x{resolution} {kind} images"


RESIZE_HINT = "pass resize=true to convert, centre-crop and resize them"


def read_image(
    source: Path | bytes,
    resolution: int,
    channels: int,
    resize: bool,
    name: str | None = None,
    hint: str = RESIZE_HINT,
    unreadable: str = "remove or replace it",
) -> torch.Tensor:
    """uint8 (C, R, R) from a file or its bytes (`name` in messages). Without `resize`, an image of
    another size or colour mode is refused, with `hint` saying what to do; a file that is not an image
    (of the formats read, ogan_pl.data.decode.RASTER_FORMATS), with `unreadable`."""
    name = str(source) if name is None else name
    try:
        if not resize:
            with open_image(source) as img:
                problem = shape_problem(img.size, img.mode, resolution, channels)
            if problem is not None:
                raise UserError(f"{name} {problem}: {hint}")
        return decode(source, Preprocess(resolution, channels))
    except DECODE_ERRORS as err:
        raise UserError(f"{name} cannot be decoded as an image ({type(err).__name__}); {unreadable}") from None


def read_images(files: list[Path], resolution: int, channels: int, resize: bool) -> torch.Tensor:
    """Images in [-1, 1], (N, C, R, R)."""
    return to_model_range(torch.stack([read_image(f, resolution, channels, resize) for f in files]))


def read_labels(csv_path: str | Path, files: list[Path], root: Path) -> np.ndarray:
    """The `attribute` of each file from a CSV with columns `file,attribute` (file relative to the
    input folder, or its name); every file must have one."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise UserError(f"labels={csv_path} does not exist; give a CSV with columns file,attribute")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as err:
        raise UserError(f"labels={csv_path} is not UTF-8 text (byte {err.start}); save it as UTF-8 CSV") from None
    except (OSError, csv.Error) as err:
        raise UserError(f"labels={csv_path} cannot be read as CSV ({err}); give columns file,attribute") from None
    if not rows or len(rows[0]) < 2:
        raise UserError(f"labels={csv_path}: expected a header and rows of file,attribute")
    table = {row[0].strip(): row[1].strip() for row in rows[1:] if len(row) >= 2}
    labels = []
    for path in files:
        key = str(path.relative_to(root)) if root.is_dir() else path.name
        value = table.get(key, table.get(path.name))
        if value is None:
            raise UserError(f"labels={csv_path} has no row for {key}; every input image needs a label")
        labels.append(value)
    if len(set(labels)) < 2:
        raise UserError(
            f"labels={csv_path} gives every image the label {labels[0]!r}; a direction needs images of "
            "at least two labels"
        )
    return np.asarray(labels)
