"""The pipelined RESP client: a few auto-pipelined connections to one Redis (TCP, unix socket
or TLS), for the service's reads.

A feed read is a few commands per user; redis-py spends tens of microseconds per command on
packing, per-reply timeouts and parsing. Here each call's commands come as one buffer, the
buffers of every call made in the same event-loop turn go out in one write on a shared
connection (auto-pipelining), and replies are parsed by hiredis in C and handed back in order.
Connections (address, TLS, AUTH, SELECT) are made from ``RedisSettings``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis

from feature_store.settings import RedisSettings
from feature_store.transport.encoding import Command, encode

# A connection whose oldest unanswered call is older than this is taken as hung: it is closed
# (its callers get ConnectionError) and the next call opens a fresh one.
STALE_S = 5.0


class _Lane(asyncio.Protocol):
    """One connection: calls are queued in order, replies are matched to them in order. A call
    whose caller gave up (or whose deadline passed) still gets its replies read (and dropped),
    so none is misattributed.

    Deadlines are kept by one timer per lane, armed for the earliest one, instead of a timer
    per call: a call that returns in time costs no timer at all."""

    def __init__(self, on_lost: Callable[[], None] | None = None) -> None:
        self.on_lost = on_lost  # told when the connection goes, whoever closed it
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
        if self.on_lost is not None:
            self.on_lost()

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
        # Told when an open connection goes: the server behind the next one may be another
        # (restarted empty), even when no call was waiting to see the loss.
        self.on_lost: Callable[[], None] | None = None

    @property
    def connections(self) -> int:
        """Open connections (for tests and metrics)."""
        return sum(not lane.closed for lane in self._lanes)

    async def _connect(self) -> _Lane:
        address, loop = self.settings.address, asyncio.get_running_loop()
        try:
            if address.unix:
                _, lane = await loop.create_unix_connection(self._lane, address.path)
            else:
                _, lane = await loop.create_connection(
                    self._lane, address.host, address.port, ssl=self.settings.ssl_context()
                )
        except TimeoutError:
            raise
        except OSError as e:  # refused, unreachable, a certificate that does not verify
            where = address.path if address.unix else f"{address.host}:{address.port}"
            raise redis.ConnectionError(f"cannot connect to Redis at {where}: {e}") from e
        try:
            for command in self.settings.hello():  # AUTH, SELECT
                (reply,) = await lane.send(encode([command]), 1)
                if isinstance(reply, hiredis.ReplyError):
                    error = (
                        redis.AuthenticationError if command[0] == "AUTH" else redis.ConnectionError
                    )
                    raise error(f"{command[0]}: {reply}")
        except BaseException:
            lane.close()
            raise
        return lane

    def _lane(self) -> _Lane:
        return _Lane(self._lost)

    def _lost(self) -> None:
        if self.on_lost is not None:
            self.on_lost()

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

    async def execute(self, commands: Sequence[Command], timeout: float | None = None) -> list[Any]:
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
