"""Which users may have a card: a Bloom filter over the users with any exposure or prebunk row.

Most feed requests are for users with no exposure to a confirmed rumor; their answer is empty
whatever Redis holds (``ranking.pipeline.rank_feed`` returns at once), so the service answers
them without a store trip when the filter says "not a member". A Bloom filter has no false
negatives: every id added answers True. A non-member answers True with probability about the
chosen rate (``FALSE_POSITIVE_RATE``) and then only costs the read it costs today.

The bit positions are ``(h1 mod m + i * (1 + h2 mod (m - 1))) mod m`` for i < k, with h1, h2 the
two halves of the id's 16-byte blake2b digest and m a prime (double hashing: with a prime m and
a step in [1, m) the k positions are distinct; with m a power of two a step with low zero bits
repeats positions and the rate is far worse). The same in every process and language (Python's
own ``hash`` is salted per process), one id at a time or vectorised. The serving test of many
ids runs in C when the optional ``domain._idbloom`` is built (its own BLAKE2b, checked against
hashlib's; decision 0077), else with hashlib and numpy: the same answers.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterable

import numpy as np

FALSE_POSITIVE_RATE = 0.01
FORMAT = 1
_HEADER = struct.Struct("<BBQQ")  # format, k, m (bits), n (ids added)
MAX_BITS = 1 << 32  # positions stay below 2**64 in uint64 arithmetic: ~450M ids at 1%
_CHUNK = 1 << 20

try:  # built at install (setup.py); without it hashlib and numpy give the same answers
    from domain import _idbloom
except ImportError:  # pragma: no cover - no C compiler at install
    _idbloom = None


def id_hashes(user_ids: Iterable[str]) -> np.ndarray:
    """Each id's two 64-bit hash halves, as an (n, 2) uint64 array: what the filter stores."""
    digest = hashlib.blake2b
    raw = b"".join(digest(u.encode(), digest_size=16).digest() for u in user_ids)
    return np.frombuffer(raw, dtype="<u8").reshape(-1, 2)


def distinct_ids(hashes: np.ndarray) -> int:
    """How many distinct ids the (n, 2) ``id_hashes`` rows hold. One sort on the first half,
    then each run of equal first halves is one id unless its second halves differ (two ids
    whose first 64 bits collide, counted exactly): 2.3-3.7x faster than ``np.unique(axis=0)``,
    which sorts 16-byte records, at 10M ids. Repeated rows only set their bits again."""
    if not len(hashes):
        return 0
    first = np.ascontiguousarray(hashes[:, 0])
    order = np.argsort(first)
    first, second = first[order], np.ascontiguousarray(hashes[:, 1])[order]
    starts = np.flatnonzero(np.r_[True, first[1:] != first[:-1]])
    low = np.minimum.reduceat(second, starts)
    high = np.maximum.reduceat(second, starts)
    n = len(starts)
    ends = np.r_[starts[1:], len(first)]
    for i in np.flatnonzero(low != high):
        n += len(set(second[starts[i] : ends[i]].tolist())) - 1
    return n


def sized(n: int, rate: float = FALSE_POSITIVE_RATE) -> tuple[int, int]:
    """Bits and hash count of a filter for ``n`` ids at false-positive ``rate``."""
    m = _prime_from(max(1024, math.ceil(-max(n, 1) * math.log(rate) / math.log(2) ** 2)))
    if m >= MAX_BITS:
        raise ValueError(f"member filter: {n} ids need more than {MAX_BITS} bits")
    k = max(1, min(32, round(m / max(n, 1) * math.log(2))))
    return m, k


def _prime_from(n: int) -> int:
    """The least prime >= ``n`` (trial division: n < 2**32, so at most ~6,500 divisors)."""
    n |= 1
    while any(n % d == 0 for d in range(3, math.isqrt(n) + 1, 2)):
        n += 2
    return n


class MemberFilter:
    """An immutable Bloom filter of user ids: ``user in f`` is True for every id it was built
    from, and for about ``FALSE_POSITIVE_RATE`` of the others."""

    __slots__ = ("bits", "k", "m", "n")

    def __init__(self, bits: bytes, k: int, m: int, n: int) -> None:
        self.bits, self.k, self.m, self.n = bits, k, m, n

    @classmethod
    def build(cls, hashes: np.ndarray, rate: float = FALSE_POSITIVE_RATE) -> MemberFilter:
        """A filter of the ids whose ``id_hashes`` rows are ``hashes`` (repeats are harmless)."""
        hashes = hashes.reshape(-1, 2)
        n = distinct_ids(hashes)
        m, k = sized(n, rate)
        flags = np.zeros(m, dtype=bool)
        for lo in range(0, len(hashes), _CHUNK):
            flags[_positions(hashes[lo : lo + _CHUNK], k, m).ravel()] = True
        bits = np.packbits(flags, bitorder="little").tobytes()
        return cls(bits, k, m, n)

    def __contains__(self, user_id: str) -> bool:
        """Whether ``user_id`` may be a member (always True for one that is)."""
        if _idbloom is not None:
            return _idbloom.contains(self.bits, self.k, self.m, [user_id])[0]
        d = hashlib.blake2b(user_id.encode(), digest_size=16).digest()
        bits, m = self.bits, self.m
        p = int.from_bytes(d[:8], "little") % m
        step = 1 + int.from_bytes(d[8:], "little") % (m - 1)
        for _ in range(self.k):
            if not bits[p >> 3] >> (p & 7) & 1:
                return False
            p = (p + step) % m
        return True

    def contains_many(self, user_ids: list[str]) -> list[bool]:
        """``user in self`` for each of ``user_ids``, vectorised (in C when built)."""
        if not user_ids:
            return []
        if _idbloom is not None:
            return _idbloom.contains(self.bits, self.k, self.m, list(user_ids))
        return self.contains_many_numpy(user_ids)

    def contains_many_numpy(self, user_ids: list[str]) -> list[bool]:
        """``contains_many`` with hashlib and numpy (the C test's reference)."""
        if not user_ids:
            return []
        pos = _positions(id_hashes(user_ids), self.k, self.m)
        bits = np.frombuffer(self.bits, dtype=np.uint8)
        hit = (bits[pos >> 3] >> (pos & 7).astype(np.uint8)) & 1
        return hit.all(axis=1).tolist()

    def to_bytes(self) -> bytes:
        """The filter as stored with its snapshot: a header, then the bits."""
        return _HEADER.pack(FORMAT, self.k, self.m, self.n) + self.bits

    @classmethod
    def from_bytes(cls, raw: bytes) -> MemberFilter:
        """The filter ``to_bytes`` wrote; ValueError when ``raw`` is not one."""
        if len(raw) < _HEADER.size:
            raise ValueError("member filter: too short")
        fmt, k, m, n = _HEADER.unpack_from(raw)
        bits = bytes(raw[_HEADER.size :])
        if fmt != FORMAT or k < 1 or len(bits) != (m + 7) // 8:
            raise ValueError("member filter: unknown format or wrong length")
        return cls(bits, k, m, n)


def _positions(hashes: np.ndarray, k: int, m: int) -> np.ndarray:
    """The (n, k) bit positions of ids with ``hashes`` (each below m < 2**32: no overflow)."""
    um = np.uint64(m)
    start = hashes[:, :1] % um
    step = hashes[:, 1:] % (um - np.uint64(1)) + np.uint64(1)
    return (start + np.arange(k, dtype=np.uint64)[None, :] * step) % um
