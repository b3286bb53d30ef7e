"""A lean, auto-pipelined RESP2 client for the service's hot reads.

A feed read is a few commands per user; redis-py spends tens of microseconds per command on
packing, per-reply timeouts and parsing. Here each call's commands are encoded into one buffer,
the buffers of every call made in the same event-loop turn go out in one write on a shared
connection (auto-pipelining), and replies are parsed by hiredis in C and handed back in order.
Connections (TCP, TLS, AUTH, SELECT) come from the same settings as redis-py's; everything else
keeps using redis-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import ssl
import time
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import hiredis
import redis

from feature_store.connection import RedisSettings

log = logging.getLogger("debunk.resp")
# A connection whose oldest unanswered call is older than this is taken as hung: it is closed
# (its callers get ConnectionError) and the next call opens a fresh one.
STALE_S = 5.0


def encode(commands: Sequence[Sequence[bytes | str]]) -> bytes:
    """Commands as one RESP buffer (arrays of bulk strings)."""
    out: list[bytes] = []
    for cmd in commands:
        out.append(b"*%d\r\n" % len(cmd))
        for arg in cmd:
            b = arg.encode() if isinstance(arg, str) else arg
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def as_dict(flat: list[bytes] | None) -> dict[bytes, bytes]:
    """An HGETALL reply (a flat RESP2 array) as a dict."""
    if not flat:
        return {}
    it = iter(flat)
    return dict(zip(it, it, strict=True))


class _Lane(asyncio.Protocol):
    """One connection: calls are queued in order, replies are matched to them in order. A call
    whose caller gave up (or whose deadline passed) still gets its replies read (and dropped),
    so none is misattributed.

    Deadlines are kept by one timer per lane, armed for the earliest one, instead of a timer
    per call: a call that returns in time costs no timer at all."""

    def __init__(self) -> None:
        self.parser = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        # (future, replies expected, replies so far, sent at, deadline or inf), in send order
        self.waiting: deque[tuple[asyncio.Future[list[Any]], int, list[Any], float, float]] = (
            deque()
        )
        self.outgoing: list[bytes] = []
        self.written = 0  # calls at the head of ``waiting`` whose commands have been sent
        self.closed = False
        self._watch: asyncio.TimerHandle | None = None
        self._watch_at = math.inf

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        waiting, gets = self.waiting, self.parser.gets
        while waiting:
            future, n, got, _, _ = waiting[0]
            while len(got) < n:
                reply = gets()
                if reply is False:
                    return
                got.append(reply)
            waiting.popleft()
            self.written -= 1
            if not future.done():
                future.set_result(got)
            if not self.written and self.outgoing:
                self._flush()  # the calls queued while this round trip was out go together

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._watch is not None:
            self._watch.cancel()
        error = redis.ConnectionError(f"Redis connection lost: {exc or 'closed by the server'}")
        while self.waiting:
            future = self.waiting.popleft()[0]
            if not future.done():
                future.set_exception(error)

    def send(self, payload: bytes, n: int, deadline: float = math.inf) -> asyncio.Future[list[Any]]:
        """Queue ``n`` commands' bytes. With nothing in flight they go out at the end of this
        loop turn (with the turn's other calls); else when the round trip in flight returns,
        together with every call queued meanwhile: one write and one read per round trip.
        Past ``deadline`` (loop time) the future fails with TimeoutError."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        if not self.outgoing and not self.written:
            loop.call_soon(self._flush)
        self.outgoing.append(payload)
        self.waiting.append((future, n, [], loop.time(), deadline))
        if deadline < self._watch_at:
            self._arm(loop, deadline)
        return future

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._watch_at = when
        self._watch = loop.call_at(when, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the calls whose deadline has passed; re-arm for the earliest one left."""
        self._watch, self._watch_at = None, math.inf
        now, earliest = loop.time(), math.inf
        for future, _, _, _, deadline in self.waiting:
            if future.done():
                continue
            if deadline <= now:
                future.set_exception(TimeoutError("Redis did not answer before the deadline"))
            elif deadline < earliest:
                earliest = deadline
        if earliest < math.inf and not self.closed:
            self._arm(loop, earliest)

    def _flush(self) -> None:
        if not self.outgoing or self.written:
            return  # already sent, or the round trip in flight will send it when it returns
        payload, count, self.outgoing = b"".join(self.outgoing), len(self.outgoing), []
        self.written += count
        if self.transport is not None and not self.closed:
            self.transport.write(payload)

    def hung(self, now: float) -> bool:
        """Whether the oldest call has waited more than STALE_S (``now``: loop time)."""
        return bool(self.waiting) and now - self.waiting[0][3] > STALE_S

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # connection_lost fails whatever still waits


class RespPool:
    """Up to ``size`` auto-pipelined connections; each call goes to the least busy one. Calls
    that are cancelled or time out leave the connection usable; a lost connection fails its
    waiting calls and is replaced on the next call."""

    def __init__(self, settings: RedisSettings, *, size: int = 2) -> None:
        self.settings = settings
        self.size = max(1, size)
        self._lanes: list[_Lane] = []
        self._connecting: asyncio.Future[_Lane] | None = None

    @staticmethod
    def supports(settings: RedisSettings) -> bool:
        """Whether this client can talk to ``settings`` (one node over TCP, TLS or a unix
        socket)."""
        return not settings.cluster and urlparse(settings.url).scheme in (
            "redis", "rediss", "unix"
        )  # fmt: skip

    @property
    def connections(self) -> int:
        """Open connections (for tests and metrics)."""
        return sum(not lane.closed for lane in self._lanes)

    def _ssl(self) -> ssl.SSLContext | None:
        if urlparse(self.settings.url).scheme != "rediss":
            return None
        ctx = ssl.create_default_context(cafile=self.settings.tls_ca_cert)
        if self.settings.tls_cert:
            ctx.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        return ctx

    async def _connect(self) -> _Lane:
        url = urlparse(self.settings.url)
        loop = asyncio.get_running_loop()
        if url.scheme == "unix":
            _, lane = await loop.create_unix_connection(_Lane, unquote(url.path))
            db = parse_qs(url.query).get("db", [""])[0]
        else:
            _, lane = await loop.create_connection(
                _Lane, url.hostname or "127.0.0.1", url.port or 6379, ssl=self._ssl()
            )
            db = url.path.strip("/")
        password = self.settings.password or (unquote(url.password) if url.password else None)
        try:
            if password:
                user = unquote(url.username) if url.username else None
                await self._hello(lane, ["AUTH", user, password] if user else ["AUTH", password],
                                  redis.AuthenticationError)  # fmt: skip
            if db and db != "0":
                await self._hello(lane, ["SELECT", db], redis.ConnectionError)
        except BaseException:
            lane.close()
            raise
        return lane

    @staticmethod
    async def _hello(lane: _Lane, command: list[Any], error: type[Exception]) -> None:
        (reply,) = await lane.send(encode([command]), 1)
        if isinstance(reply, hiredis.ReplyError):
            raise error(f"{command[0]}: {reply}")

    def _ready_lane(self) -> _Lane | None:
        """The least busy open connection, or None when a new one should be opened (fewer than
        ``size`` are open and every open one has calls in flight). Hung ones are closed."""
        now = asyncio.get_running_loop().time()
        lanes = self._lanes
        if any(lane.closed or lane.hung(now) for lane in lanes):
            for lane in lanes:
                if not lane.closed and lane.hung(now):
                    lane.close()
            lanes = self._lanes = [lane for lane in lanes if not lane.closed]
        best = None
        for lane in lanes:
            if lane.outgoing and not lane.written:
                return lane  # its write goes out at the end of this turn: join it for free
        for lane in lanes:
            if not lane.waiting:
                return lane
            if best is None or len(lane.waiting) < len(best.waiting):
                best = lane
        return best if len(lanes) >= self.size else None

    async def _new_lane(self) -> _Lane:
        """A new connection; one connect at a time, concurrent callers share it."""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, future: asyncio.Future[_Lane]) -> None:
        self._connecting = None
        if not future.cancelled() and future.exception() is None:
            self._lanes.append(future.result())

    async def execute(
        self, commands: Sequence[Sequence[bytes | str]], timeout: float | None = None
    ) -> list[Any]:
        """The replies of ``commands``, sent as one pipeline; a Redis error reply raises, and
        so does TimeoutError when ``timeout`` seconds pass first."""
        if not commands:
            return []
        return await self.send(encode(commands), len(commands), timeout)

    async def send(self, payload: bytes, n: int, timeout: float | None = None) -> list[Any]:
        """execute() for ``n`` commands already encoded as one RESP buffer (hot reads build
        theirs directly)."""
        if not n:
            return []
        if timeout is not None and timeout <= 0:
            raise TimeoutError("no time left for Redis")
        loop = asyncio.get_running_loop()
        deadline = math.inf if timeout is None else loop.time() + timeout
        lane = self._ready_lane()
        if lane is None:
            async with asyncio.timeout_at(None if timeout is None else deadline):
                lane = await self._new_lane()
        replies = await lane.send(payload, n, deadline)
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise redis.ResponseError(str(reply))
        return replies

    async def aclose(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        while self._lanes:
            self._lanes.pop().close()


class LocalLane:
    """A blocking connection to a Redis on this machine (a unix socket), for one user's feed
    read: the call returns without leaving the event loop.

    Awaiting a round trip costs the service about 90 µs of CPU per RankFeed (a future, a task
    wake-up, the transport's callbacks); a blocking send and receive over a local socket costs a
    fraction of that (measured with bench-serve's harness), and blocks the loop for the ~20 µs
    Redis takes to answer. A wait is capped at ``max_wait``: a Redis that does not answer by then
    closes the connection, raises TimeoutError, and sends every read to the awaiting path for
    ``cool_down`` seconds, so a slow or stopped Redis never stalls the loop more than once.
    """

    def __init__(
        self, settings: RedisSettings, *, max_wait: float = 0.005, cool_down: float = 1.0
    ) -> None:
        self.settings = settings
        self.max_wait = max_wait
        self.cool_down = cool_down
        self.trips = 0  # times a failed read sent the reads to the awaiting path
        self._sock: socket.socket | None = None
        self._parser = hiredis.Reader()
        self._resting_until = 0.0

    @staticmethod
    def supports(settings: RedisSettings) -> bool:
        """Only a single Redis behind a unix socket: a remote one is always awaited."""
        return not settings.cluster and urlparse(settings.url).scheme == "unix"

    def usable(self) -> bool:
        """False while a recent failure keeps the reads on the awaiting path."""
        return time.monotonic() >= self._resting_until

    def execute(self, commands: Sequence[Sequence[bytes | str]], timeout: float) -> list[Any]:
        """The replies of ``commands``, waiting at most ``min(timeout, max_wait)`` seconds; a
        Redis error reply raises (the connection stays usable)."""
        return self.send(encode(commands), len(commands), timeout)

    def send(self, payload: bytes, n: int, timeout: float) -> list[Any]:
        """execute() for ``n`` commands already encoded as one RESP buffer."""
        if not n:
            return []
        wait = min(timeout, self.max_wait)
        if wait <= 0:
            raise TimeoutError
        try:
            deadline = time.monotonic() + wait
            sock = self._sock or self._connect(deadline)
            replies = self._round_trip(sock, payload, n, deadline)
        except redis.ConnectionError:
            self._trip()
            raise
        except TimeoutError:  # socket.timeout
            self._trip()
            raise TimeoutError("local Redis did not answer in time") from None
        except OSError as e:
            self._trip()
            raise redis.ConnectionError(f"local Redis read failed: {e}") from None
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise redis.ResponseError(str(reply))
        return replies

    def _round_trip(
        self, sock: socket.socket, payload: bytes, n: int, deadline: float
    ) -> list[Any]:
        sock.settimeout(max(1e-6, deadline - time.monotonic()))
        sock.sendall(payload)
        replies: list[Any] = []
        while len(replies) < n:
            reply = self._parser.gets()
            if reply is not False:
                replies.append(reply)
                continue
            sock.settimeout(max(1e-6, deadline - time.monotonic()))
            data = sock.recv(1 << 16)
            if not data:
                raise redis.ConnectionError("closed by the server")
            self._parser.feed(data)
        return replies

    def _connect(self, deadline: float) -> socket.socket:
        url = urlparse(self.settings.url)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock, self._parser = sock, hiredis.Reader()
        sock.settimeout(max(1e-6, deadline - time.monotonic()))
        sock.connect(unquote(url.path))
        password = self.settings.password or (unquote(url.password) if url.password else None)
        hello: list[list[Any]] = []
        if password:
            user = unquote(url.username) if url.username else None
            hello.append(["AUTH", user, password] if user else ["AUTH", password])
        db = parse_qs(url.query).get("db", [""])[0]
        if db and db != "0":
            hello.append(["SELECT", db])
        replies = self._round_trip(sock, encode(hello), len(hello), deadline) if hello else []
        for command, reply in zip(hello, replies, strict=True):
            if isinstance(reply, hiredis.ReplyError):
                self.close()
                error = redis.AuthenticationError if command[0] == "AUTH" else redis.ResponseError
                raise error(f"{command[0]}: {reply}")
        return sock

    def _trip(self) -> None:
        self.close()
        self.trips += 1
        self._resting_until = time.monotonic() + self.cool_down
        log.warning("local Redis read failed; reads are awaited for %.1f s", self.cool_down)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
