"""The pipelined RESP transport, for one Redis over TCP, a unix socket or TLS: every read goes
through the auto-pipelined lanes of ``resp_pool``; a feed read is one prebuilt buffer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio

from feature_store.settings import RedisSettings
from feature_store.transport.base import StoreTransport
from feature_store.transport.encoding import (
    Command,
    FeedKeys,
    as_dict,
    delivery_payload,
    encode,
    feed_payload,
)
from feature_store.transport.resp_pool import RespPool

_HGETALL = frozenset((b"HGETALL", "HGETALL", b"hgetall", "hgetall"))


class RespTransport(StoreTransport):
    """Reads over up to ``size`` pipelined connections (``RespPool``), each call within its
    timeout or the settings' ``socket_timeout``; writes through a redis-py client made from the
    same settings."""

    name = "resp"

    def __init__(self, settings: RedisSettings, *, size: int = 2) -> None:
        self.settings = settings
        self.pool = RespPool(settings, size=size)
        self._client = settings.async_client()

    def on_connection_lost(self, callback: Callable[[], None]) -> None:
        self.pool.on_lost = callback

    @property
    def client(self) -> redis.asyncio.Redis:
        return self._client

    async def pipeline(
        self, commands: Sequence[Command], timeout: float | None = None
    ) -> list[Any]:
        if not commands:
            return []
        replies = await self.pool.send(encode(commands), len(commands), self._within(timeout))
        return [
            as_dict(reply) if command[0] in _HGETALL else reply
            for command, reply in zip(commands, replies, strict=True)
        ]

    async def feed_reads(
        self, user_keys: Sequence[FeedKeys], surface: str, timeout: float | None = None
    ) -> list[Any]:
        # The deadline is kept by the lane (one timer per connection, none per call).
        per_user = len(user_keys[0]) if user_keys else 4
        payload, n = feed_payload(user_keys, surface), per_user * len(user_keys)
        flat = await self.pool.send(payload, n, self._within(timeout))
        return [r if i % per_user == 2 else as_dict(r) for i, r in enumerate(flat)]

    async def delivery_reads(
        self, user_keys: Sequence[FeedKeys], surface: str, timeout: float | None = None
    ) -> list[Any]:
        n = sum(len(row) for row in user_keys)
        if not n:
            return []
        flat = await self.pool.send(delivery_payload(user_keys, surface), n, self._within(timeout))
        caps, i = set(), 0
        for row in user_keys:  # each row's second reply is its cap (HGET): left as it came
            caps.add(i + 1)
            i += len(row)
        return [r if i in caps else as_dict(r) for i, r in enumerate(flat)]

    def _within(self, timeout: float | None) -> float:
        """A call's deadline: its own, else the settings' socket timeout (as redis-py bounds
        each reply), so a Redis that stops answering never holds a caller forever."""
        return self.settings.socket_timeout if timeout is None else timeout

    async def aclose(self) -> None:
        try:
            await self.pool.aclose()
        finally:
            await self._client.aclose()
