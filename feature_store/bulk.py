"""Bulk HSET loading: many users' exposure hashes as one raw RESP payload per chunk.

redis-py spends microseconds packing each command in Python; here the protocol bytes of a whole
chunk are built with vectorised Arrow string kernels, sent in one write, and the single-line
replies are counted without parsing each one. Any error reply fails the load.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis

ID_PATTERN = r"^[A-Za-z0-9_.@:+/=-]{1,128}$"


class BulkLoadError(RuntimeError):
    """Redis answered an error to a bulk write."""


def _b(x: pa.Array | str) -> pa.Array | pa.Scalar:
    if isinstance(x, str):
        return pa.scalar(x.encode(), pa.binary())
    if pa.types.is_integer(x.type):
        x = pc.cast(x, pa.string())
    return pc.cast(x, pa.binary())


def hset_payload(
    key_prefix: bytes, users: pa.Array, fields: pa.Array, values: pa.Array
) -> tuple[bytes, int]:
    """RESP bytes of one HSET per user (rows sorted by user) and the number of commands.

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


class BulkConnection:
    """One connection that streams payloads and collects their single-line replies at the end.

    Redis keeps processing what was sent while the next payload is being built, so building
    and loading overlap; replies (a few bytes each) wait in Redis's output buffer.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._conn = self._pool.get_connection()
        self._expected = 0

    def send(self, payload: bytes, commands: int) -> None:
        if commands:
            try:
                self._conn.send_packed_command([payload], check_health=False)
            except BaseException:
                self._abort()
                raise
            self._expected += commands

    def finish(self) -> None:
        """Wait for every reply; raise BulkLoadError if any was an error."""
        try:
            errors = self._drain()
        except BaseException:
            self._abort()
            raise
        self._pool.release(self._conn)
        if errors:
            raise BulkLoadError(f"redis refused a bulk write: {errors!r}")

    def _drain(self) -> bytes:
        sock = self._conn._sock
        seen, errors, last = 0, b"", b"\n"
        while seen < self._expected:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise BulkLoadError("connection closed during a bulk write")
            data = last + chunk  # a reply's CR LF may straddle two reads
            seen += data.count(b"\r\n")
            at = data.find(b"\n-")
            if at >= 0 and not errors:
                errors = data[at + 1 : at + 200]
            last = chunk[-1:]
        self._expected = 0
        return errors

    def _abort(self) -> None:
        """Replies may still be in flight: this connection is never reused."""
        self._conn.disconnect()
        self._pool.release(self._conn)
