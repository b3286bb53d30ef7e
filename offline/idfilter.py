"""A cheap vectorised prefilter for string ids: which rows may be in a set, before the exact test.

Each id is reduced to a 64-bit key (its last 8 bytes, little-endian; shorter ids are their bytes
zero-extended), the key is hashed by a multiply-shift into a bucket table, and only rows whose
bucket holds a member go on to the exact ``pc.index_in``. The key is read straight from the Arrow
offsets and data buffers with numpy (one gather, one multiply, one table lookup per row), which
costs a fraction of a hash-table probe of the strings. The prefilter never drops a member: equal
ids have equal keys, hence equal buckets; rows it cannot key (null, empty, or ending in the first
8 bytes of the data buffer) are always candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: spreads keys over the top bits
_LE_U64 = np.dtype("<u8")
_MIN_BITS, _MAX_BITS = 10, 25
_BUCKETS_PER_ID = 32  # a ~3% chance that a non-member lands in an occupied bucket
# The table is a bitset (2**bits bits): 119k ids take 512 KiB, which stays in a core's L2 cache.


def reference_key(value: bytes) -> int:
    """The key of one id, in plain Python (the definition the vectorised code follows)."""
    return int.from_bytes(value[-8:], "little")


def _offsets(array: pa.Array) -> np.ndarray:
    """The array's n + 1 value offsets (int32 or int64), honouring its slice offset."""
    dtype = np.int64 if pa.types.is_large_string(array.type) or pa.types.is_large_binary(
        array.type
    ) else np.int32  # fmt: skip
    width = np.dtype(dtype).itemsize
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array) + 1, offset=array.offset * width
    )


def keys(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the 64-bit key, and whether the row could not be keyed (null, empty, too early)."""
    n = len(array)
    offsets = _offsets(array)
    ends = offsets[1:].astype(np.intp)
    lengths = ends - offsets[:-1]
    data = array.buffers()[2]
    unkeyed = (lengths <= 0) | (ends < 8)
    if array.null_count:
        unkeyed |= np.asarray(array.is_null())
    if data is None or data.size < 8:
        return np.zeros(n, dtype=np.uint64), np.ones(n, dtype=bool)
    key = _tail_windows(data, offsets[0], ends, lengths)
    short = lengths < 8
    if short.any():
        # A short id is the top ``length`` bytes of its window: shift the bytes before it out.
        shift = (8 - np.clip(lengths, 1, 8)).astype(np.uint64) * np.uint64(8)
        np.right_shift(key, shift, out=key)
    return key, unkeyed


def _tail_windows(data: pa.Buffer, start: int, ends: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The 8 bytes ending at each value's end, as little-endian uint64 (ends below 8 read from
    byte 0). Ids of one fixed length (the usual case) are read with a strided copy instead of a
    gather, which is several times cheaper."""
    n = len(ends)
    width = int(lengths[0]) if n else 0
    if width >= 8 and int(ends[-1]) - start == n * width and lengths.min() == lengths.max():
        # Fixed width: value i ends at start + (i + 1) * width; its window starts 8 bytes earlier.
        tails = np.ndarray(
            shape=(n,), dtype=_LE_U64, buffer=data, offset=start + width - 8, strides=(width,)
        )
        return tails.astype(np.uint64)
    # Every 8-byte window of the data buffer, unaligned: window k starts at byte k.
    windows = np.ndarray(shape=(data.size - 7,), dtype=_LE_U64, buffer=data, strides=(1,))
    return windows[np.maximum(ends - 8, 0)].astype(np.uint64, copy=False)


@dataclass(frozen=True)
class IdFilter:
    """Bucket table of a set of ids; ``candidates`` keeps every member and few non-members."""

    table: np.ndarray
    shift: np.uint64

    @classmethod
    def build(cls, ids: pa.Array) -> IdFilter:
        """From the set's (non-null) string or binary ids."""
        bits = int(
            np.clip(np.ceil(np.log2(max(1, len(ids)) * _BUCKETS_PER_ID)), _MIN_BITS, _MAX_BITS)
        )
        table = np.zeros(1 << (bits - 3), dtype=np.uint8)
        shift = np.uint64(64 - bits)
        # A leading dummy id puts every real id past the buffer's first 8 bytes, so all are keyed.
        padded = pa.concat_arrays([pa.array(["\0" * 8]).cast(ids.type), ids])
        key, unkeyed = keys(padded)
        key, unkeyed = key[1:], unkeyed[1:]
        bucket = _bucket(key[~unkeyed], shift)
        np.bitwise_or.at(
            table, bucket >> np.uint64(3), np.left_shift(1, bucket & np.uint64(7)).astype(np.uint8)
        )
        return cls(table, shift)

    def candidates(self, ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Mask of rows that may be members (all members are); the rest surely are not."""
        if isinstance(ids, pa.ChunkedArray):
            parts = [self.candidates(c) for c in ids.chunks]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
        if not _keyable(ids.type):
            return np.ones(len(ids), dtype=bool)
        key, unkeyed = keys(ids)
        bucket = _bucket(key, self.shift)
        bit = (bucket & np.uint64(7)).astype(np.uint8)
        byte = self.table[np.right_shift(bucket, np.uint64(3), out=bucket)]
        np.right_shift(byte, bit, out=byte)
        return np.logical_or(np.bitwise_and(byte, 1, out=byte).view(bool), unkeyed, out=unkeyed)


def _keyable(t: pa.DataType) -> bool:
    """String and binary arrays (plain or large) have the offsets/data layout keys() reads."""
    return (
        pa.types.is_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_string(t)
        or pa.types.is_large_binary(t)
    )


def _bucket(key: np.ndarray, shift: np.uint64) -> np.ndarray:
    """Multiply-shift hash of the keys into table positions (top bits of key * multiplier)."""
    h = np.multiply(key, _MULTIPLIER)
    return np.right_shift(h, shift, out=h)
