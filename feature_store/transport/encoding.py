"""RESP2 encoding, the one place this project turns commands into protocol bytes: a pipeline
of commands, the service's feed read (one format per user), and bulk HSET loading (vectorised
with Arrow). Tests pin the bytes and check that the three agree."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Command = Sequence[bytes | str]
# A user's feed-read keys: exposures, delivery, caps, model, then (optionally) live exposures.
FeedKeys = tuple[bytes, ...]


def encode(commands: Sequence[Command]) -> bytes:
    """Commands as one RESP buffer (arrays of bulk strings)."""
    out: list[bytes] = []
    for cmd in commands:
        out.append(b"*%d\r\n" % len(cmd))
        for arg in cmd:
            b = arg.encode() if isinstance(arg, str) else arg
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def feed_commands(user_keys: Sequence[FeedKeys], surface: str) -> list[Command]:
    """The reads of each user's feed view, in order: HGETALL of the exposures and of the
    delivery state, HGET of today's cap for ``surface``, HGETALL of the model side, and HGETALL
    of the live exposures when the user's keys carry a fifth."""
    out: list[Command] = []
    for exposures, delivery, caps, model, *live in user_keys:
        out += [(b"HGETALL", exposures), (b"HGETALL", delivery), (b"HGET", caps, surface),
                (b"HGETALL", model)]  # fmt: skip
        out += [(b"HGETALL", k) for k in live]
    return out


def delivery_commands(user_keys: Sequence[FeedKeys], surface: str) -> list[Command]:
    """The mutable part of each user's feed read (the snapshot's own rows already known): HGETALL
    of the delivery state, HGET of today's cap for ``surface``, HGETALL of each later key (the
    live exposures and live days)."""
    out: list[Command] = []
    for delivery, caps, *rest in user_keys:
        out += [(b"HGETALL", delivery), (b"HGET", caps, surface)]
        out += [(b"HGETALL", k) for k in rest]
    return out


def delivery_payload(user_keys: Sequence[FeedKeys], surface: str) -> bytes:
    """``encode(delivery_commands(user_keys, surface))``, one format per row shape."""
    s = surface.encode()
    field = b"$%d\r\n%s\r\n" % (len(s), s)
    out = []
    for row in user_keys:
        delivery, caps, *rest = row
        out.append(b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n*3\r\n$4\r\nHGET\r\n$%d\r\n%s\r\n"
                   % (len(delivery), delivery, len(caps), caps))  # fmt: skip
        out.append(field)
        out += [_HGETALL % (len(k), k) for k in rest]
    return b"".join(out)


def feed_payload(user_keys: Sequence[FeedKeys], surface: str) -> bytes:
    """``encode(feed_commands(user_keys, surface))``, built in one format per user (the hot
    path: a RankFeed's read is this one buffer)."""
    if not user_keys:
        return b""
    n = len(user_keys[0])
    fmt = _feed_format(n, surface)
    if n == 4:
        return b"".join(
            [fmt % (len(e), e, len(d), d, len(c), c, len(m), m) for e, d, c, m in user_keys]
        )
    if n == 5:
        return b"".join([fmt % (len(e), e, len(d), d, len(c), c, len(m), m, len(x), x)
                         for e, d, c, m, x in user_keys])  # fmt: skip
    if n == 6:  # the live layers with one live day: the usual feed read
        return b"".join([fmt % (len(e), e, len(d), d, len(c), c, len(m), m, len(x), x, len(y), y)
                         for e, d, c, m, x, y in user_keys])  # fmt: skip
    return b"".join([fmt % tuple([p for k in row for p in (len(k), k)]) for row in user_keys])


@functools.lru_cache(maxsize=32)
def _feed_format(keys_per_user: int, surface: str) -> bytes:
    """The format of one user's feed read of ``keys_per_user`` keys (each key's length and
    bytes to fill in), the HGET's ``surface`` field in place: built once per shape."""
    s = surface.encode()
    field = (b"$%d\r\n%s\r\n" % (len(s), s)).replace(b"%", b"%%")
    return _HGETALL * 2 + _HGET + field + _HGETALL * (keys_per_user - 3)


_HGETALL = b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n"
_HGET = b"*3\r\n$4\r\nHGET\r\n$%d\r\n%s\r\n"  # then the field


def as_dict(flat: list[bytes] | None) -> dict[bytes, bytes]:
    """An HGETALL reply (a flat RESP2 array) as a dict."""
    if not flat:
        return {}
    it = iter(flat)
    return dict(zip(it, it, strict=True))


def _b(x: pa.Array | str) -> pa.Array | pa.Scalar:
    if isinstance(x, str):
        return pa.scalar(x.encode(), pa.binary())
    if pa.types.is_integer(x.type):
        x = pc.cast(x, pa.string())
    return pc.cast(x, pa.binary())


def hset_payload(
    key_prefix: bytes, users: pa.Array, fields: pa.Array, values: pa.Array
) -> tuple[bytes, int]:
    """RESP bytes of one HSET per user (rows sorted by user) and the number of commands: what
    ``encode`` gives for those HSETs, built with Arrow string kernels (no Python per field).

    Keys are ``key_prefix + b"{" + user + b"}"``; ``values`` is a binary array.
    """
    n = len(users)
    if n == 0:
        return b"", 0
    u = users.to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    counts = np.diff(np.r_[starts, n])
    heads_users = pc.take(users, pa.array(starts))
    keys = pc.binary_join_element_wise(
        _b(key_prefix.decode()), _b("{"), _b(heads_users), _b("}"), _b("")
    )
    headers = pc.binary_join_element_wise(
        _b("*"), _b(pa.array(2 + 2 * counts)), _b("\r\n$4\r\nHSET\r\n$"),
        _b(pc.binary_length(keys)), _b("\r\n"), keys, _b("\r\n"), _b(""),
    )  # fmt: skip
    vlen = pc.binary_length(values)
    segments = pc.binary_join_element_wise(
        _b("$"), _b(pc.binary_length(fields)), _b("\r\n"), _b(fields), _b("\r\n$"),
        _b(vlen), _b("\r\n"), _b(values), _b("\r\n"), _b(""),
    )  # fmt: skip
    group = np.repeat(np.arange(len(starts)), counts)
    order = np.empty(n + len(starts), dtype=np.int64)
    order[starts + np.arange(len(starts))] = np.arange(len(starts))  # headers first
    order[np.arange(n) + group + 1] = len(starts) + np.arange(n)  # then their fields
    combined = pc.take(pa.concat_arrays([headers, segments]), pa.array(order))
    offsets = combined.buffers()[1]
    first, last = np.frombuffer(offsets, dtype=np.int32)[[0, len(combined)]]
    return combined.buffers()[2].to_pybytes()[first:last], len(starts)
