"""A cheap vectorised prefilter for string ids: which rows may be in a set, before the exact test.

Each id is reduced to a 64-bit key (its last 8 bytes, little-endian; shorter ids are their bytes
zero-extended). Two multiply-shift hashes of the key (the top bits of its products with two odd
constants) give two bucket numbers, and only rows whose two buckets both hold a member go on to
the exact ``pc.index_in`` (a Bloom filter with two probes). The key is read straight from the
Arrow offsets and data buffers (one gather, two multiplies, two bit lookups per row), which costs
a fraction of a hash-table probe of the strings. The prefilter never drops a member: equal ids
have equal keys, hence equal buckets; rows it cannot key (null, empty, or ending in the first 8
bytes of the data buffer) are always candidates.

``candidate_rows`` does the same scan in one pass in C (``offline.join._idscan``, built at install)
when that extension is present, and with numpy otherwise; both give the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

try:
    from offline.join import _idscan
except ImportError:  # built without a C compiler: the numpy path does the same work, slower
    _idscan = None

_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: spreads keys over the top bits
_MULTIPLIER2 = np.uint64(0xC2B2AE3D27D4EB4F)  # another odd constant (xxHash's) for the second probe
_LE_U64 = np.dtype("<u8")
_MIN_BITS, _MAX_BITS = 10, 25
# With two probes, 32 bits per id give a non-member a ~0.4% chance of passing (one probe: ~3%):
# fewer false candidates to gather and look up exactly, for one more lookup in the same table.
_BUCKETS_PER_ID = 32
# The table is a bitset (2**bits bits): 119k ids take 512 KiB, which stays in a core's L2 cache.


def reference_key(value: bytes) -> int:
    """The key of one id, in plain Python (the definition the vectorised code follows)."""
    return int.from_bytes(value[-8:], "little")


def _offset_width(t: pa.DataType) -> int:
    """Bytes per value offset: 8 for the large string/binary types, else 4."""
    return 8 if pa.types.is_large_string(t) or pa.types.is_large_binary(t) else 4


def _offsets(array: pa.Array) -> np.ndarray:
    """The array's n + 1 value offsets (int32 or int64), honouring its slice offset."""
    width = _offset_width(array.type)
    return np.frombuffer(
        array.buffers()[1],
        dtype=np.int64 if width == 8 else np.int32,
        count=len(array) + 1,
        offset=array.offset * width,
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
        for bucket in _buckets(key[~unkeyed], shift):
            np.bitwise_or.at(
                table,
                bucket >> np.uint64(3),
                np.left_shift(1, bucket & np.uint64(7)).astype(np.uint8),
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
        first, second = _buckets(key, self.shift)
        hit = np.logical_and(self._occupied(first), self._occupied(second))
        return np.logical_or(hit, unkeyed, out=unkeyed)

    def _occupied(self, bucket: np.ndarray) -> np.ndarray:
        """Whether each bucket's bit is set (``bucket`` is overwritten)."""
        bit = (bucket & np.uint64(7)).astype(np.uint8)
        byte = self.table[np.right_shift(bucket, np.uint64(3), out=bucket)]
        np.right_shift(byte, bit, out=byte)
        return np.bitwise_and(byte, 1, out=byte).view(bool)

    def candidate_rows(self, ids: pa.Array | pa.ChunkedArray, *, native: bool = True) -> np.ndarray:
        """Numbers (int64, ascending) of the rows ``candidates`` keeps. The C scan is used when
        built (unless ``native`` is False); it reads the buffers once instead of ~15 numpy passes.
        """
        if isinstance(ids, pa.ChunkedArray):
            parts, start = [], 0
            for chunk in ids.chunks:
                parts.append(self.candidate_rows(chunk, native=native) + start)
                start += len(chunk)
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        if _idscan is None or not native or not _keyable(ids.type) or not len(ids):
            return np.flatnonzero(self.candidates(ids)).astype(np.int64, copy=False)
        validity, offsets, data = ids.buffers()
        out = np.empty(len(ids), dtype=np.int64)
        count = _idscan.candidate_rows(
            offsets, _offset_width(ids.type), ids.offset, len(ids),
            validity if ids.null_count else None, data, self.table, int(self.shift), out,
        )  # fmt: skip
        return out[:count]


def _keyable(t: pa.DataType) -> bool:
    """String and binary arrays (plain or large) have the offsets/data layout keys() reads."""
    return (
        pa.types.is_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_string(t)
        or pa.types.is_large_binary(t)
    )


def _buckets(key: np.ndarray, shift: np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """Two multiply-shift hashes of the keys into table positions: the top bits of the key
    times each multiplier (only the top bits of a product depend on all the key's bits)."""
    first, second = np.multiply(key, _MULTIPLIER), np.multiply(key, _MULTIPLIER2)
    return np.right_shift(first, shift, out=first), np.right_shift(second, shift, out=second)
