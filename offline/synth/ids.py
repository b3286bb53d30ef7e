"""The world's ids (``u00000042``, ``i000000042``, ``r000042``, ``d0000042``) built straight
into Arrow buffers, since logs of 100M+ rows cannot afford a Python string per row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

# "0000".."9999" as little-endian uint32: four ASCII digits written with one store.
_DIGITS4 = np.array([int.from_bytes(f"{i:04d}".encode(), "little") for i in range(10_000)], "<u4")


def fixed_ids(idx: np.ndarray, prefix: str, width: int) -> pa.Array:
    """Ids like ``u00000042`` written straight into an Arrow buffer: a packed record per id
    (prefix bytes, leading digits, 4-digit groups from a lookup table), no Python per row."""
    idx = np.asarray(idx, dtype=np.int64)
    n = len(idx)
    if n and (idx.min() < 0 or idx.max() >= 10**width):
        raise ValueError(f"id out of range for {prefix}{'9' * width}")
    lead, groups = width % 4, width // 4
    layout = np.dtype(
        [(f"p{j}", "u1") for j in range(len(prefix))]
        + [(f"l{j}", "u1") for j in range(lead)]
        + [(f"g{j}", "<u4") for j in range(groups)]
    )
    out = np.empty(n, dtype=layout)
    for j, byte in enumerate(prefix.encode()):
        out[f"p{j}"] = byte
    rest = idx
    for j in reversed(range(groups)):
        out[f"g{j}"] = _DIGITS4[rest % 10_000]
        rest = rest // 10_000
    for j in reversed(range(lead)):
        out[f"l{j}"] = rest % 10 + ord("0")
        rest = rest // 10
    offsets = np.arange(0, layout.itemsize * (n + 1), layout.itemsize, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out.view(np.uint8)))


def user_ids(idx: np.ndarray) -> pa.Array:
    """``u%08d`` ids."""
    return fixed_ids(idx, "u", 8)


def item_ids(idx: np.ndarray) -> pa.Array:
    """``i%09d`` ids."""
    return fixed_ids(idx, "i", 9)


def rumor_ids(idx: np.ndarray) -> pa.Array:
    """``r%06d`` ids."""
    return fixed_ids(idx, "r", 6)


def debunk_ids(idx: np.ndarray) -> pa.Array:
    """``d%07d`` ids."""
    return fixed_ids(idx, "d", 7)
