"""Where encoded images come from: a folder tree of image files, or an LMDB as LSUN distributes it.

A source names its items for messages (`name`, printable whatever bytes a file name holds) and
fingerprints them for the decode cache (`fingerprint`: names, sizes and modification times, so
images added, removed or replaced under the same names give another cache key).
"""

import hashlib
import logging
import os
import weakref
from pathlib import Path

from ogan_pl.data.decode import DECODE_ERRORS, open_image
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.text import printable

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class FolderSource:
    """Every image file under `root` (recursive, sorted: the order is the same on every machine)."""

    kind = "folder"

    def __init__(self, root: str | Path, how_to_get: str = ""):
        root = Path(root)
        if not root.is_dir():
            raise UserError(
                f"dataset.root={root} does not exist or is not a directory; "
                + (how_to_get or "pass dataset.root=DIR pointing at your images")
            )
        self.root = root
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not self.files:
            raise UserError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}; "
                + (how_to_get or "pass dataset.root=DIR pointing at your images")
            )

    def __len__(self) -> int:
        return len(self.files)

    def name(self, i: int) -> str:
        return printable(str(self.files[i]))

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path in self.files:
            stat = path.stat()
            digest.update(os.fsencode(path) + f"\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]

    def read(self, i: int) -> Path:
        return self.files[i]

    def header_ok(self, i: int) -> bool:
        """Cheap check without a full decode: catches zero-byte, non-image and broken-header files."""
        try:
            with open_image(self.files[i]) as img:
                img.verify()
            return True
        except DECODE_ERRORS:
            return False


def is_lmdb(path: Path) -> bool:
    return (path / "data.mdb").is_file()


_OPEN_SOURCES: "weakref.WeakSet[LmdbSource]" = weakref.WeakSet()


def _close_before_fork() -> None:
    for source in list(_OPEN_SOURCES):
        source.close()


os.register_at_fork(before=_close_before_fork)


class LmdbSource:
    """An LMDB whose keys are image ids and values encoded images (LSUN's `*_train_lmdb/`).

    The environment is opened lazily in each process, read-only and without locking. An LMDB
    handle must not cross a fork (DataLoader workers), so every open one is closed just before
    any fork and reopened on the next read.
    """

    kind = "lmdb"

    def __init__(self, path: str | Path, how_to_get: str = ""):
        path = Path(path)
        if not is_lmdb(path):
            raise UserError(
                f"dataset.root={path} is not an LMDB directory (no data.mdb in it); "
                + (how_to_get or "point dataset.root at the *_lmdb folder")
            )
        self.path = path
        self._env, self._pid = None, None
        with self._open().begin(write=False) as txn:
            self.keys = list(txn.cursor().iternext(keys=True, values=False))
        if not self.keys:
            raise UserError(f"the LMDB {path} holds no images; " + (how_to_get or "check the download"))

    def close(self) -> None:
        if self._env is not None and self._pid == os.getpid():
            self._env.close()
        self._env, self._pid = None, None

    def _open(self):
        import lmdb  # lazy: only the LSUN sources need it

        if self._env is None or self._pid != os.getpid():
            try:
                self._env = lmdb.open(
                    str(self.path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=256
                )
            except lmdb.Error as err:
                raise UserError(f"cannot open the LMDB {self.path} ({err}); is it complete?") from None
            self._pid = os.getpid()
            _OPEN_SOURCES.add(self)
        return self._env

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_env": None, "_pid": None}

    def __len__(self) -> int:
        return len(self.keys)

    def name(self, i: int) -> str:
        return printable(f"{self.path}[{self.keys[i].decode(errors='replace')}]")

    def fingerprint(self) -> str:
        """The keys, and the data file's size and modification time (a value rewritten changes them)."""
        digest = hashlib.sha256(b"\n".join(self.keys))
        stat = (self.path / "data.mdb").stat()
        digest.update(f"\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
        return digest.hexdigest()[:16]

    def read(self, i: int) -> bytes:
        with self._open().begin(write=False, buffers=False) as txn:
            value = txn.get(self.keys[i])
        if value is None:
            raise OSError(f"key {self.keys[i]!r} has no value")
        return value

    def header_ok(self, i: int) -> bool:
        return True  # values are checked when decoded


def open_source(root: str | Path, how_to_get: str = ""):
    """An LMDB directory or a folder of images, whichever `root` is."""
    root = Path(root)
    if is_lmdb(root) or root.name.endswith("_lmdb"):
        return LmdbSource(root, how_to_get)
    return FolderSource(root, how_to_get)
