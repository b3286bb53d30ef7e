"""Bulk HSET loading: many users' exposure hashes as one raw RESP payload per chunk.

redis-py spends microseconds packing each command in Python; here the protocol bytes of a whole
chunk (``transport.encoding.hset_payload``, vectorised with Arrow) are sent in one write, and
the single-line replies are counted without parsing each one. Any error reply fails the load.
"""

from __future__ import annotations

import redis


class BulkLoadError(RuntimeError):
    """Redis answered an error to a bulk write."""


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
