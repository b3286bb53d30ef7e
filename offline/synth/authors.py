"""Who wrote each item of the synthetic world (``author_type`` of ``items.parquet``).

A pure function of the item's index, through a fixed integer hash (splitmix64) rather than the
world's random streams, so adding the column moves nothing else a seed produces. Rumor items
are written by ordinary users and now and then by media (outlets repeat rumors too); the
background holds the authorities' posts as well: official, platform and fact_checker items,
which the nightly matcher never auto-tags (``offline/nightly/provenance.py``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

# Shares per 10,000 items, cumulative in this order; the rest are "user".
RUMOR_AUTHORS = (("media", 800),)
BACKGROUND_AUTHORS = (("media", 800), ("official", 400), ("platform", 150), ("fact_checker", 150))
SALT = np.uint64(0x5EED_A07B_0000_0017)


def mix(idx: np.ndarray) -> np.ndarray:
    """splitmix64 of ``idx`` (uint64, wrapping): the same bits on every machine."""
    z = np.asarray(idx, dtype=np.uint64) + SALT
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def author_types(idx: np.ndarray, rumor: bool) -> pa.Array:
    """The ``author_type`` of the items with indices ``idx``: rumor items or background ones."""
    bucket = mix(idx) % np.uint64(10_000)
    names = np.full(len(bucket), "user", dtype=object)
    lo = 0
    for name, share in RUMOR_AUTHORS if rumor else BACKGROUND_AUTHORS:
        names[(bucket >= lo) & (bucket < lo + share)] = name
        lo += share
    return pa.array(names, pa.string())
