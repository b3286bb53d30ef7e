"""Bulk HSET loading: many users' exposure hashes as one raw RESP payload per chunk.

redis-py spends microseconds packing each command in Python; here the protocol bytes of a whole
chunk (``transport.encoding.hset_payload``, vectorised with Arrow) are sent in one write, and
the single-line replies are counted without parsing each one. Any error reply fails the load.

Each connection sends from a thread of its own, so the next chunk is encoded while the last
one is still being written (a blocking write of a few MB returns only when Redis has read
most of it). ``BulkLoader`` spreads the chunks over several connections: under ``appendfsync
always`` Redis fsyncs once per event-loop turn, and reads at most 16 KB from each connection a
turn, so each connection added carries that much more per fsync (decision 0045).
"""

from __future__ import annotations

import queue
import threading

import redis

# Payloads waiting for a connection's sender thread: enough to keep it busy, bounded in memory.
QUEUED_PAYLOADS = 2
_DONE = b""


class BulkLoadError(RuntimeError):
    """Redis answered an error to a bulk write."""


class BulkConnection:
    """One connection that streams payloads from a sender thread and collects their
    single-line replies at the end.

    Redis keeps processing what was sent while the next payload is being built, so building
    and loading overlap; replies (a few bytes each) wait in Redis's output buffer.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._conn = self._pool.get_connection()
        self._expected = 0
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=QUEUED_PAYLOADS)
        self._failure: BaseException | None = None
        self._sender = threading.Thread(target=self._send_all, name="bulk-sender", daemon=True)
        self._sender.start()

    def send(self, payload: bytes, commands: int) -> None:
        """Queue ``payload`` (``commands`` RESP commands) for the sender thread."""
        if not commands:
            return
        if self._failure is not None:
            self.abort()
            raise self._failure
        self._queue.put(payload)
        self._expected += commands

    def _send_all(self) -> None:
        """The sender thread: write each queued payload; after a failure, only empty the queue."""
        while (payload := self._queue.get()) is not _DONE:
            if self._failure is None:
                try:
                    self._conn.send_packed_command([payload], check_health=False)
                except BaseException as e:  # handed to the caller by send or finish
                    self._failure = e

    def finish(self) -> None:
        """Wait for every reply; raise BulkLoadError if any was an error."""
        try:
            self._stop_sender()
            if self._failure is not None:
                raise self._failure
            errors = self._drain()
        except BaseException:
            self.abort()
            raise
        self._pool.release(self._conn)
        if errors:
            raise BulkLoadError(f"redis refused a bulk write: {errors!r}")

    def _stop_sender(self) -> None:
        """Let the sender thread write what is queued, and end."""
        if self._sender.is_alive():
            self._queue.put(_DONE)
            self._sender.join()

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

    def abort(self) -> None:
        """Give the load up (replies may still be in flight: this connection is never reused)."""
        self._conn.disconnect()  # a sender blocked in a write fails at once and ends
        self._stop_sender()
        self._pool.release(self._conn)


class BulkLoader:
    """Payloads spread over ``connections`` BulkConnections in turn; ``finish`` waits for all.

    Each payload holds whole users' hashes, so which connection carries one does not matter.
    """

    def __init__(self, client: redis.Redis, connections: int = 1) -> None:
        if connections < 1:
            raise ValueError(f"a bulk load needs at least one connection, got {connections}")
        self._lanes = [BulkConnection(client) for _ in range(connections)]
        self._next = 0

    def send(self, payload: bytes, commands: int) -> None:
        """Queue ``payload`` on the next connection."""
        if commands:
            self._lanes[self._next].send(payload, commands)
            self._next = (self._next + 1) % len(self._lanes)

    def finish(self) -> None:
        """Wait for every connection's replies; the first failure is raised after all ended."""
        failure: BaseException | None = None
        for lane in self._lanes:
            try:
                lane.finish()
            except BaseException as e:
                failure = failure or e
        if failure is not None:
            raise failure

    def abort(self) -> None:
        """Give the load up on every connection (the writer failed between payloads)."""
        for lane in self._lanes:
            lane.abort()
