"""Encoded image (file or bytes) -> uint8 (C, R, R): mode conversion, centre crop, resize."""

import io
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

#: What a broken, truncated or non-image input raises while decoding.
DECODE_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)
#: The only formats read: raster images that PIL decodes itself. Never EPS/PS (PIL runs Ghostscript on
#: them) nor any other plugin: an image is often a stranger's file.
RASTER_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")


def open_image(source: bytes | Path | str) -> Image.Image:
    """PIL's lazy open of a file or its bytes, restricted to RASTER_FORMATS (anything else raises
    UnidentifiedImageError). A size past PIL's bomb limit still raises; the warning below it is not
    printed (the callers check sizes themselves)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(
            io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source, formats=RASTER_FORMATS
        )


@dataclass(frozen=True)
class Preprocess:
    """How a decoded image becomes a training image; part of every cache key."""

    resolution: int
    channels: int = 3
    crop_size: int | None = None  # centre square of this side (capped at the smaller side); None = smaller side

    def key(self) -> dict:
        return asdict(self)


def value_range(arr: np.ndarray, is_float: bool, is_16bit: bool) -> tuple[float, float]:
    """The nominal range of a high-bit-depth grayscale image's values: float images in [0, 1]
    (or [-1, 1]) or [0, 255]; 16-bit ones in [0, 65535]; anything else by its own min and max."""
    low, high = float(arr.min()), float(arr.max())
    if is_float and low >= -1.0 and high <= 1.0:
        return (-1.0, 1.0) if low < 0 else (0.0, 1.0)
    if low >= 0 and high <= 255 and not is_16bit:
        return 0.0, 255.0
    if low >= 0 and high <= 65535:
        return 0.0, 65535.0
    return low, max(high, low + 1e-12)


def _to_8bit(img: Image.Image) -> Image.Image:
    """16/32-bit integer or float grayscale -> 8-bit L over its nominal range (PIL's convert clips)."""
    arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
    low, high = value_range(arr, img.mode == "F", img.mode.startswith("I;16"))
    scaled = (arr - low) * (255.0 / (high - low))
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def convert_mode(img: Image.Image, channels: int) -> Image.Image:
    """Any PIL mode -> RGB (channels 3) or L (channels 1). Transparency is composited onto white."""
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB" if channels == 3 else "L")


def decode(data: bytes | Path, pre: Preprocess) -> torch.Tensor:
    """Decode fully (a truncated file raises here), convert, centre-crop, resize (bicubic, antialiased)."""
    with open_image(data) as img:
        img.load()
        img = convert_mode(img, pre.channels)
    side = min(img.size) if pre.crop_size is None else min(pre.crop_size, *img.size)
    img = TF.center_crop(img, side)
    if img.size != (pre.resolution, pre.resolution):
        img = TF.resize(img, [pre.resolution, pre.resolution], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return TF.pil_to_tensor(img)
