"""Encoded image (file or bytes) -> uint8 (C, R, R): mode conversion, centre crop, resize."""
import io
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

#: What a broken, truncated or non-image input raises while decoding.
DECODE_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)


@dataclass(frozen=True)
class Preprocess:
    """How a decoded image becomes a training image; part of every cache key."""

    resolution: int
    channels: int = 3
    crop_size: int | None = None  # centre square of this side (capped at the smaller side); None = smaller side

    def key(self) -> dict:
        return asdict(self)


def _to_8bit(img: Image.Image) -> Image.Image:
    """16/32-bit integer or float grayscale -> 8-bit L, keeping the full range (PIL's convert clips)."""
    arr = np.asarray(img, dtype=np.float64)
    peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
    return Image.fromarray(np.clip(np.rint(arr * (255.0 / peak)), 0, 255).astype(np.uint8), mode="L")


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
    with Image.open(io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data) as img:
        img.load()
        img = convert_mode(img, pre.channels)
    side = min(img.size) if pre.crop_size is None else min(pre.crop_size, *img.size)
    img = TF.center_crop(img, side)
    if img.size != (pre.resolution, pre.resolution):
        img = TF.resize(img, [pre.resolution, pre.resolution], interpolation=InterpolationMode.BICUBIC,
                        antialias=True)
    return TF.pil_to_tensor(img)
