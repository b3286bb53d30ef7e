"""The world's random streams: every draw comes from a PCG64 stream keyed by (seed, purpose,
key...), so a part of the world never depends on how much another part drew, nor on chunk sizes."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

LUT_SIZE = 4096


class Stream(IntEnum):
    """Purposes of the random streams: each (purpose, key...) is an independent stream."""

    USERS = 1
    LIBRARY = 2
    RUMOR = 3
    SEEDS = 4
    POOL = 5
    ITEM_TIME = 6
    ITEM_TEXT = 7
    BACKGROUND = 8
    CASCADE = 9
    SERVE = 10
    SERVE_MORE = 11


def stream(seed: int, purpose: Stream, *key: int) -> np.random.Generator:
    """The stream for (seed, purpose, key): independent of every other and of chunk sizes."""
    ss = np.random.SeedSequence(seed, spawn_key=(int(purpose), *(int(k) for k in key)))
    return np.random.Generator(np.random.PCG64(ss))


def lut(probs: dict[str, float], names: tuple[str, ...]) -> np.ndarray:
    """A lookup table for fast categorical draws: ``lut[integers(LUT_SIZE)]`` is a name index."""
    p = np.array([probs.get(n, 0.0) for n in names], dtype=np.float64)
    cdf = np.cumsum(p / p.sum())
    return np.minimum(
        np.searchsorted(cdf, (np.arange(LUT_SIZE) + 0.5) / LUT_SIZE, side="right"), len(names) - 1
    ).astype(np.int8)
