"""Decode-once image cache: every image decoded and resized once, in parallel, into a uint8 .npy
array under `paths.cache_dir`, memory-mapped by later runs.

The key holds the source (kind, root, the names of its items) and the preprocessing. A build
writes a temporary file and renames it when complete, then writes the `.json` record last, so an
interrupted build is never used; a file that does not match its record is rebuilt.
"""
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, Dataset

from ogan_pl.console import image_progress
from ogan_pl.data.decode import DECODE_ERRORS, Preprocess, decode
from ogan_pl.errors import UserError
from ogan_pl.io import atomic_write

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


def source_identity(source) -> dict:
    """The source's kind, resolved root and a digest of its item names (files added or removed: another key)."""
    names = hashlib.sha256("\n".join(source.name(i) for i in range(len(source))).encode()).hexdigest()[:16]
    root = source.path if source.kind == "lmdb" else source.root
    return {"kind": source.kind, "root": str(Path(root).resolve()), "n": len(source), "names": names}


def cache_paths(cache_dir: str | Path, key: dict) -> tuple[Path, Path]:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    folder = Path(cache_dir) / "images"
    return folder / f"{digest}.npy", folder / f"{digest}.json"


def _load(array_path: Path, record_path: Path, key: dict) -> np.ndarray | None:
    if not (array_path.is_file() and record_path.is_file()):
        return None
    try:
        record = json.loads(record_path.read_text())
        images = np.load(array_path, mmap_mode="r")
    except (OSError, ValueError) as err:
        log.warning("image cache %s is unreadable (%s); rebuilding it", array_path, type(err).__name__)
        return None
    if record.get("key") != key or list(images.shape) != record.get("shape") or images.dtype != np.uint8:
        log.warning("image cache %s does not match its record; rebuilding it", array_path)
        return None
    return images


class _DecodeOne(Dataset):
    def __init__(self, source, pre: Preprocess):
        self.source, self.pre = source, pre

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        try:
            return i, decode(self.source.read(i), self.pre), None
        except DECODE_ERRORS as err:
            return i, None, f"{type(err).__name__}: {err}"


def _as_list(batch):
    return batch


def report_bad(names: list[str], total: int, what: str = "image(s)") -> None:
    """One warning for all skipped inputs, naming the first few."""
    if names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        log.warning("skipped %d of %d %s that cannot be decoded: %s (dataset.on_error=raise makes this fatal)",
                    len(names), total, what, shown)


def build(source, pre: Preprocess, array_path: Path, record_path: Path, key: dict, on_error: str,
          workers: int) -> np.ndarray:
    n, shape = len(source), (pre.channels, pre.resolution, pre.resolution)
    array_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = array_path.with_name(f".{array_path.name}.{os.getpid()}.tmp")
    loader = DataLoader(_DecodeOne(source, pre), batch_size=64, num_workers=workers, collate_fn=_as_list)
    bad: list[int] = []
    try:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, *shape))
        with image_progress() as start:
            advance = start(f"caching {n} images at {pre.resolution}x{pre.resolution}", n)
            for items in loader:
                for i, image, error in items:
                    if image is None:
                        if on_error == "raise":
                            raise UserError(f"cannot decode {source.name(i)} ({error}); fix or remove it, "
                                            "or set dataset.on_error=skip to skip such images")
                        bad.append(i)
                    else:
                        images[i] = image.numpy()
                advance(len(items))
        if bad:  # compact: the cache holds only the decodable images, in source order
            good = np.setdiff1d(np.arange(n), np.asarray(bad))
            compact = np.lib.format.open_memmap(tmp.with_suffix(".compact"), mode="w+", dtype=np.uint8,
                                                shape=(len(good), *shape))
            for start_row in range(0, len(good), 4096):
                compact[start_row:start_row + 4096] = images[good[start_row:start_row + 4096]]
            compact.flush()
            del images, compact
            os.replace(tmp.with_suffix(".compact"), tmp)
        else:
            images.flush()
            del images
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, array_path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".compact").unlink(missing_ok=True)
    report_bad([source.name(i) for i in bad], n)
    record = {"key": key, "shape": [n - len(bad), *shape], "skipped": [source.name(i) for i in bad[:100]]}
    atomic_write(record_path, lambda f: f.write(json.dumps(record, indent=1).encode()))
    return np.load(array_path, mmap_mode="r")


def cached_images(source, pre: Preprocess, cache_dir: str | Path, on_error: str = "skip",
                  workers: int | None = None) -> np.ndarray:
    """The (N, C, R, R) uint8 memory-mapped array of every decodable image of `source`."""
    key = {"version": FORMAT_VERSION, "source": source_identity(source), "preprocess": pre.key()}
    array_path, record_path = cache_paths(cache_dir, key)
    images = _load(array_path, record_path, key)
    if images is None:
        workers = len(os.sched_getaffinity(0)) if workers is None else workers
        log.info("building the image cache %s (%d images, %d workers)", array_path, len(source), workers)
        images = build(source, pre, array_path, record_path, key, on_error, workers)
    if len(images) == 0:
        raise UserError(f"none of the {len(source)} images of {source_identity(source)['root']} can be decoded")
    return images
