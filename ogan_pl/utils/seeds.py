"""Seeds of the random streams a run draws from, derived from (run seed, rank, step, stream).

Every random draw of training is a function of these four numbers, so ranks draw different values
and a resumed run draws the same values at the same step as an uninterrupted one.
"""

import enum

import numpy as np


class Stream(enum.IntEnum):
    """The independent streams (the numbers are part of every checkpoint's reproducibility: never renumber)."""

    NOISE = 0  # z of each generator iteration
    DEVICE = 1  # the device's global generator (dropout-like randomness inside parts)
    FLIPS = 2  # random horizontal flips of a batch
    ORDER = 3  # the data order of each epoch


def rank_seed(seed: int, rank: int, step: int, stream: int = Stream.NOISE) -> int:
    """A well-mixed 63-bit seed for (run seed, rank, step, stream)."""
    state = np.random.SeedSequence([seed, rank, step, int(stream)]).generate_state(1, dtype=np.uint64)[0]
    return int(state) >> 1
