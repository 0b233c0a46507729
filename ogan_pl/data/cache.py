"""Decode-once image cache: every image decoded and resized once, in parallel, into a uint8 .npy
array under `paths.cache_dir`, memory-mapped by later runs.

The key holds the source (kind, root, a fingerprint of its items' names, sizes and modification
times) and the preprocessing. A build writes a temporary file and renames it when complete, then
writes the `.json` record last, so an interrupted build is never used; a file that does not match
its record is rebuilt. The temporary file is removed when the build stops (an error, Ctrl-C,
SIGTERM), and one left by a killed build is removed by the next build.
"""

import contextlib
import hashlib
import json
import logging
import os
import signal
import threading
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, Dataset

from ogan_pl.data.decode import DECODE_ERRORS, Preprocess, decode
from ogan_pl.utils.console import image_progress
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import atomic_write, pid_alive

log = logging.getLogger(__name__)
FORMAT_VERSION = 2


def source_identity(source) -> dict:
    """The source's kind, resolved root and fingerprint (files added, removed or replaced: another key)."""
    root = source.path if source.kind == "lmdb" else source.root
    return {
        "kind": source.kind,
        "root": os.fsencode(Path(root).resolve()).decode("utf-8", "backslashreplace"),
        "n": len(source),
        "items": source.fingerprint(),
    }


def cache_paths(cache_dir: str | Path, key: dict) -> tuple[Path, Path]:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    folder = Path(cache_dir) / "images"
    return folder / f"{digest}.npy", folder / f"{digest}.json"


def _load(array_path: Path, record_path: Path, key: dict, on_error: str) -> np.ndarray | None:
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
    skipped = record.get("skipped") or []
    if skipped and on_error == "raise":  # the cache was built with on_error=skip: say what it skipped
        raise UserError(
            f"cannot decode {skipped[0]} ({record.get('n_skipped', len(skipped))} image(s) of this "
            "dataset cannot be decoded; listed in "
            f"{record_path}); fix or remove them, or set "
            "dataset.on_error=skip to skip such images"
        )
    if skipped:
        report_bad(skipped, record["shape"][0] + record.get("n_skipped", len(skipped)))
    return images


def remove_stale_builds(array_path: Path) -> None:
    """Temporary files of builds of this cache whose process is gone (a build killed with SIGKILL)."""
    for tmp in array_path.parent.glob(f".{array_path.name}.*.tmp*"):
        pid = tmp.name[len(array_path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            log.info("removing %s, left by an interrupted cache build", tmp)
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def stop_cleanly_on_sigterm():
    """SIGTERM (scancel, a shell's kill) raises SystemExit(143) here instead of killing the process,
    so a build's `finally` removes its temporary file."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
        log.warning(
            "skipped %d of %d %s that cannot be decoded: %s (dataset.on_error=raise makes this fatal)",
            len(names),
            total,
            what,
            shown,
        )


def _decode_all(source, pre: Preprocess, tmp: Path, on_error: str, workers: int) -> list[int]:
    """Decode every item into the .npy file `tmp`; returns the indices that could not be decoded
    (with on_error=raise the first one stops the build). The file then holds only the good ones."""
    n, shape = len(source), (pre.channels, pre.resolution, pre.resolution)
    loader = DataLoader(_DecodeOne(source, pre), batch_size=64, num_workers=workers, collate_fn=_as_list)
    bad: list[int] = []
    images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, *shape))
    with image_progress() as start:
        advance = start(f"caching {n} images at {pre.resolution}x{pre.resolution}", n)
        for items in loader:
            for i, image, error in items:
                if image is None:
                    if on_error == "raise":
                        raise UserError(
                            f"cannot decode {source.name(i)} ({error}); fix or remove it, "
                            "or set dataset.on_error=skip to skip such images"
                        )
                    bad.append(i)
                else:
                    images[i] = image.numpy()
            advance(len(items))
    if bad:  # compact: the cache holds only the decodable images, in source order
        good = np.setdiff1d(np.arange(n), np.asarray(bad))
        compact_path = tmp.with_name(tmp.name + ".compact")
        compact = np.lib.format.open_memmap(compact_path, mode="w+", dtype=np.uint8, shape=(len(good), *shape))
        for start_row in range(0, len(good), 4096):
            compact[start_row : start_row + 4096] = images[good[start_row : start_row + 4096]]
        compact.flush()
        del images, compact
        os.replace(compact_path, tmp)
    else:
        images.flush()
        del images
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    return bad


def build(
    source, pre: Preprocess, array_path: Path, record_path: Path, key: dict, on_error: str, workers: int
) -> np.ndarray:
    array_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(array_path)
    tmp = array_path.with_name(f".{array_path.name}.{os.getpid()}.tmp")
    try:
        with stop_cleanly_on_sigterm():
            bad = _decode_all(source, pre, tmp, on_error, workers)
            os.replace(tmp, array_path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".compact").unlink(missing_ok=True)
    n = len(source)
    skipped = [source.name(i) for i in bad]
    report_bad(skipped, n)
    record = {
        "key": key,
        "shape": [n - len(bad), pre.channels, pre.resolution, pre.resolution],
        "n_skipped": len(bad),
        "skipped": skipped[:100],
    }
    atomic_write(record_path, lambda f: f.write(json.dumps(record, indent=1).encode()))
    return np.load(array_path, mmap_mode="r")


def cached_images(
    source, pre: Preprocess, cache_dir: str | Path, on_error: str = "skip", workers: int | None = None
) -> np.ndarray:
    """The (N, C, R, R) uint8 memory-mapped array of every decodable image of `source`."""
    key = {"version": FORMAT_VERSION, "source": source_identity(source), "preprocess": pre.key()}
    array_path, record_path = cache_paths(cache_dir, key)
    images = _load(array_path, record_path, key, on_error)
    if images is None:
        workers = len(os.sched_getaffinity(0)) if workers is None else workers
        log.info("building the image cache %s (%d images, %d workers)", array_path, len(source), workers)
        images = build(source, pre, array_path, record_path, key, on_error, workers)
    if len(images) == 0:
        raise UserError(f"none of the {len(source)} images of {source_identity(source)['root']} can be decoded")
    return images
