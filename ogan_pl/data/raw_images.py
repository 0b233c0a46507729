"""Images decoded on the fly in the DataLoader workers (dataset.cache=false)."""

import logging

from torch.utils.data import Dataset

from ogan_pl.data.decode import DECODE_ERRORS, Preprocess, decode
from ogan_pl.utils.errors import UserError

log = logging.getLogger(__name__)


class DecodedImages(Dataset):
    """Item i is `source` item `indices[i]`, decoded and preprocessed.

    A file that passed the header check can still fail to decode (truncated data). With
    on_error=skip the next image is used instead, so a long run is not killed, and the first
    failure per worker is logged; with on_error=raise it stops the run.
    """

    def __init__(self, source, pre: Preprocess, indices: list[int], on_error: str = "skip"):
        self.source, self.pre, self.indices, self.on_error = source, pre, list(indices), on_error
        self._failed = 0

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        for offset in range(len(self.indices)):
            index = self.indices[(i + offset) % len(self.indices)]
            try:
                return {"image": decode(self.source.read(index), self.pre)}
            except DECODE_ERRORS as err:
                if self.on_error == "raise":
                    raise UserError(
                        f"cannot decode {self.source.name(index)} ({err}); fix or remove it, "
                        "or set dataset.on_error=skip"
                    ) from None
                self._failed += 1
                if self._failed == 1:
                    log.warning(
                        "skipping undecodable image %s (%s); further ones are counted silently",
                        self.source.name(index),
                        err,
                    )
        raise UserError(f"none of the {len(self.indices)} images could be decoded")
