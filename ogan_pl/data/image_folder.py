"""Every image under a folder (recursive): RGB or L, centre-cropped to square, resized, uint8."""
import logging
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from ogan_pl.errors import UserError

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MODES = {1: "L", 3: "RGB"}
DECODE_ERRORS = (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError)


def list_images(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"image folder {root} does not exist; pass dataset.root=DIR")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}; "
                        "pass dataset.root=DIR pointing at your images")
    return files


def readable(path: Path) -> bool:
    """Cheap header check (no full decode): catches zero-byte, non-image and broken files."""
    try:
        with Image.open(path) as img:
            img.verify()
        return True
    except DECODE_ERRORS:
        return False


def drop_unreadable(files: list[Path]) -> list[Path]:
    ok = [readable(f) for f in files]
    bad = [f for f, k in zip(files, ok) if not k]
    if bad:
        names = ", ".join(str(f) for f in bad[:5]) + (", ..." if len(bad) > 5 else "")
        log.warning("skipping %d unreadable image file(s): %s", len(bad), names)
    good = [f for f, k in zip(files, ok) if k]
    if not good:
        raise UserError(f"none of the {len(files)} image files under the dataset root can be read")
    return good


def load_image(path: Path, resolution: int, channels: int) -> torch.Tensor:
    """Decode -> mode -> centre crop to the smaller side -> resize -> (C, R, R) uint8."""
    with Image.open(path) as img:
        img = img.convert(MODES[channels])
    img = TF.center_crop(img, min(img.size))
    img = TF.resize(img, [resolution, resolution], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return TF.pil_to_tensor(img)


class ImageFolderDataset(Dataset):
    def __init__(self, files: list[Path], resolution: int, channels: int = 3):
        self.files = files
        self.resolution = resolution
        self.channels = channels
        self._failed = 0

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        # A file that passed the header check can still fail to decode (truncated data): use the
        # next one rather than kill a long run, and say so once per worker.
        for offset in range(len(self.files)):
            path = self.files[(i + offset) % len(self.files)]
            try:
                return {"image": load_image(path, self.resolution, self.channels)}
            except DECODE_ERRORS as err:
                self._failed += 1
                if self._failed == 1:
                    log.warning("skipping undecodable image %s (%s); further ones are counted silently", path, err)
        raise UserError(f"none of the {len(self.files)} images could be decoded")
