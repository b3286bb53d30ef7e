"""The opening and closing every snapshot RPC shares, so each servicer method is its own logic:
arguments validated (INVALID_ARGUMENT with the reason), the pinned snapshot (UNAVAILABLE before
the first), store calls within the caller's deadline, and a store failure turned into a
``degraded`` answer (the metrics interceptor counts those) instead of an error."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import grpc
import redis

from service import validation
from service.offload import CpuPool
from service.snapshot_watcher import SnapshotWatcher

log = logging.getLogger("debunk.service")

# How long a request may wait for the store at most (less when the caller's deadline is nearer).
DEFAULT_STORE_TIMEOUT_S = 0.25
# Time kept back from the caller's deadline to build and send the answer.
DEADLINE_MARGIN_S = 0.005
STORE_ERRORS = (TimeoutError, redis.RedisError, OSError)


def lost_connection(error: BaseException) -> bool:
    """Whether a store error means the connection was lost or refused (the Redis behind it may
    come back empty), as opposed to a slow answer."""
    if isinstance(error, (TimeoutError, redis.TimeoutError)):
        return False
    return isinstance(error, (redis.ConnectionError, OSError))


A = TypeVar("A")
R = TypeVar("R")
T = TypeVar("T")


def time_left(context: grpc.aio.ServicerContext, limit: float = DEFAULT_STORE_TIMEOUT_S) -> float:
    """Seconds a store call may take: ``limit``, or less when the caller's deadline (minus the
    margin to answer) is nearer. TimeoutError when no time is left, so the call is not made."""
    remaining = context.time_remaining()
    timeout = limit if remaining is None else min(limit, remaining - DEADLINE_MARGIN_S)
    if timeout <= 0:
        raise TimeoutError
    return timeout


async def within_deadline(
    context: grpc.aio.ServicerContext, call: Awaitable[T], limit: float = DEFAULT_STORE_TIMEOUT_S
) -> T:
    """Await a store call within the caller's deadline and at most ``limit`` seconds, in the
    calling task (a timeout scope, not wait_for's extra task): a read that needs no IO costs
    no trip around the event loop. A call whose time is already up is never started."""
    try:
        timeout = time_left(context, limit)
    except TimeoutError:
        if asyncio.iscoroutine(call):
            call.close()
        raise
    async with asyncio.timeout(timeout):
        return await call


async def valid(
    context: grpc.aio.ServicerContext, parse: Callable[..., A], *args: Any, **kwargs: Any
) -> A:
    """``parse(*args, **kwargs)``, or the call ends INVALID_ARGUMENT with the reason."""
    try:
        return parse(*args, **kwargs)
    except validation.BadRequest as e:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))  # raises AbortError


@dataclass(slots=True)
class Call(Generic[A]):
    """One opened RPC: its validated arguments, the snapshot version it reads, when it started,
    and whether a store read was given up (the answer is then flagged degraded)."""

    context: grpc.aio.ServicerContext
    args: A
    version: str
    now: float
    degraded: bool = False
    on_lost: Callable[[], None] | None = None  # told when a store connection was lost
    read_store: bool = False  # whether the answer rests on a per-request store read
    early: Any = None  # what the rpc's ``unread`` found before the call opened, if anything

    def failed(self, error: BaseException) -> None:
        """A store read failed: the answer is degraded, and a lost connection is reported."""
        self.degraded = True
        if self.on_lost is not None and lost_connection(error):
            self.on_lost()

    def time_left(self, limit: float = DEFAULT_STORE_TIMEOUT_S) -> float:
        """``time_left`` for this call's deadline (asked before a store read: marks it)."""
        self.read_store = True
        return time_left(self.context, limit)

    async def store(self, call: Awaitable[T], limit: float = DEFAULT_STORE_TIMEOUT_S) -> T:
        """A store read the answer needs: a failure degrades the whole answer."""
        self.read_store = True
        return await within_deadline(self.context, call, limit)

    async def store_or(self, call: Awaitable[T], fallback: T) -> T:
        """A store read the answer can do without: on failure, ``fallback`` and a degraded flag."""
        self.read_store = True
        try:
            return await within_deadline(self.context, call)
        except STORE_ERRORS as e:
            self.failed(e)
            return fallback


class Snapshotted(Protocol):
    """A servicer whose RPCs read the snapshot its watcher pins (answers are degraded while the
    watcher does not trust the pinned snapshot: gone, or not yet seen since a lost
    connection)."""

    watcher: SnapshotWatcher
    cpu: CpuPool


def rpc(
    parse: Callable[[Any], A],
    answer: Callable[..., R],
    heavy: Callable[[Any], bool] | None = None,
    unread: Callable[[Any, A, str], Any] | None = None,
) -> Callable[[Callable[[Any, Call[A], R], Awaitable[None]]], Callable[..., Awaitable[R]]]:
    """Make ``method(self, call, reply)`` a gRPC handler ``(self, request, context)``: the request
    goes through ``parse``, the reply starts as ``answer(snapshot_version=...)`` and the method
    fills it in. A request that ``heavy`` says is big is parsed on the servicer's CPU pool
    (``service.offload``), off the event loop. A store failure that escapes the method sends
    what the reply holds by then (e.g. its experiment labels) flagged degraded, so store reads
    come before cards; so does an answer that read the store while the watcher did not trust
    the pinned snapshot (one from the process's cached catalog and matcher alone stays
    whole). ``unread(self, args, version)``, when given, may answer at once, before any of
    that (a reply it marked itself, e.g. a feed user with nothing to read), or give what it
    found on the way (the call's ``early``, so the method need not find it again) or None."""

    def decorate(
        method: Callable[[Any, Call[A], R], Awaitable[None]],
    ) -> Callable[..., Awaitable[R]]:
        name = method.__name__

        @functools.wraps(method)
        async def handler(self: Snapshotted, request: Any, context: grpc.aio.ServicerContext) -> R:
            try:
                if heavy is not None and heavy(request):
                    args = await self.cpu.run(parse, request)
                else:
                    args = parse(request)
            except validation.BadRequest as e:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))  # raises AbortError
            version = self.watcher.version
            if version is None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "no snapshot loaded yet")
            if unread is not None:
                early = unread(self, args, version)
                if isinstance(early, answer):
                    return early
            else:
                early = None
            reply = answer(snapshot_version=version)
            watcher = self.watcher
            call = Call(context, args, version, time.time(), on_lost=watcher.suspect, early=early)
            trusted = watcher.trusted  # and again at the end: a flip may come in between
            try:
                await method(self, call, reply)
            except STORE_ERRORS as e:
                log.warning("%s degraded: %s", name, type(e).__name__)
                call.failed(e)
            if call.read_store and not (trusted and watcher.trusted):
                call.degraded = True  # what it read may come from a Redis that lost the snapshot
            if call.degraded:
                reply.degraded = True  # type: ignore[attr-defined]
            return reply

        return handler

    return decorate
