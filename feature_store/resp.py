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
import ssl
import time
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis
import redis

from feature_store.connection import RedisSettings

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
    whose caller gave up still gets its replies read (and dropped), so none is misattributed."""

    def __init__(self) -> None:
        self.parser = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[tuple[asyncio.Future[list[Any]], int, list[Any], float]] = deque()
        self.outgoing: list[bytes] = []
        self.written = 0  # calls at the head of ``waiting`` whose commands have been sent
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        waiting, gets = self.waiting, self.parser.gets
        while waiting:
            future, n, got, _ = waiting[0]
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
        error = redis.ConnectionError(f"Redis connection lost: {exc or 'closed by the server'}")
        while self.waiting:
            future = self.waiting.popleft()[0]
            if not future.done():
                future.set_exception(error)

    def send(self, payload: bytes, n: int) -> asyncio.Future[list[Any]]:
        """Queue ``n`` commands' bytes. With nothing in flight they go out at the end of this
        loop turn (with the turn's other calls); else when the round trip in flight returns,
        together with every call queued meanwhile: one write and one read per round trip."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        if not self.outgoing and not self.written:
            loop.call_soon(self._flush)
        self.outgoing.append(payload)
        self.waiting.append((future, n, [], time.monotonic()))
        return future

    def _flush(self) -> None:
        if not self.outgoing or self.written:
            return  # already sent, or the round trip in flight will send it when it returns
        payload, count, self.outgoing = b"".join(self.outgoing), len(self.outgoing), []
        self.written += count
        if self.transport is not None and not self.closed:
            self.transport.write(payload)

    def hung(self, now: float) -> bool:
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
        """Whether this client can talk to ``settings`` (one node over TCP or TLS)."""
        return not settings.cluster and urlparse(settings.url).scheme in ("redis", "rediss")

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
        _, lane = await loop.create_connection(
            _Lane, url.hostname or "127.0.0.1", url.port or 6379, ssl=self._ssl()
        )
        password = self.settings.password or (unquote(url.password) if url.password else None)
        db = url.path.strip("/")
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

    async def _lane(self) -> _Lane:
        """The least busy open connection; a new one while fewer than ``size`` are open and
        every open one has calls in flight."""
        now = time.monotonic()
        for lane in self._lanes:
            if not lane.closed and lane.hung(now):
                lane.close()
        self._lanes = [lane for lane in self._lanes if not lane.closed]
        best = min(self._lanes, key=lambda lane: len(lane.waiting), default=None)
        if best is not None and (not best.waiting or len(self._lanes) >= self.size):
            return best
        if self._connecting is None:  # one connect at a time; concurrent callers share it
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, future: asyncio.Future[_Lane]) -> None:
        self._connecting = None
        if not future.cancelled() and future.exception() is None:
            self._lanes.append(future.result())

    async def execute(self, commands: Sequence[Sequence[bytes | str]]) -> list[Any]:
        """The replies of ``commands``, sent as one pipeline; a Redis error reply raises."""
        if not commands:
            return []
        payload = encode(commands)
        lane = await self._lane()
        replies = await lane.send(payload, len(commands))
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
