"""A user's own images for the encoder tools (`ogan-invert`, `ogan-edit`): a folder or one file,
checked against the model's image shape, and the optional `file,attribute` labels CSV."""

import csv
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ogan_pl.data.convert import to_model_range
from ogan_pl.data.decode import DECODE_ERRORS, Preprocess, decode
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


def shape_problem(size: tuple[int, int], mode: str, resolution: int, channels: int) -> str | None:
    """What keeps an image of PIL `size` and `mode` from being a model input as it is ("is 64x64 RGB;
    the model takes 32x32 grayscale images"), or None if nothing does."""
    grayscale = mode in ("1", "L", "LA", "I", "I;16", "F")
    if size == (resolution, resolution) and (channels == 1) == grayscale:
        return None
    kind = "grayscale" if channels == 1 else "RGB"
    return f"is {size[0]}x{size[1]} {mode}; the model takes {resolution}x{resolution} {kind} images"


RESIZE_HINT = "pass resize=true to convert, centre-crop and resize them"


def read_image(
    source: Path | bytes,
    resolution: int,
    channels: int,
    resize: bool,
    name: str | None = None,
    hint: str = RESIZE_HINT,
) -> torch.Tensor:
    """uint8 (C, R, R) from a file or its bytes (`name` in messages). Without `resize`, an image of
    another size or colour mode is refused, with `hint` saying what to do."""
    name = str(source) if name is None else name
    try:
        if not resize:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
                problem = shape_problem(img.size, img.mode, resolution, channels)
            if problem is not None:
                raise UserError(f"{name} {problem}: {hint}")
        return decode(source, Preprocess(resolution, channels))
    except DECODE_ERRORS as err:
        raise UserError(f"{name} cannot be decoded as an image ({type(err).__name__}); remove or replace it") from None


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
