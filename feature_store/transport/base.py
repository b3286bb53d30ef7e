"""The store-read interface: the few operations ``SnapshotReader`` needs from Redis, whatever
carries them, so the reader has no transport branches and every transport passes one contract
suite (tests/contract/test_store_transport.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio

from feature_store.transport.encoding import Command, FeedKeys, delivery_commands, feed_commands


class StoreTransport(ABC):
    """Pipelined reads of one Redis deployment, with deadlines.

    Replies come in the shapes redis-py gives for reads: bytes or None for GET and HGET, a list
    for HMGET, a dict for HGETALL (empty for a missing key). An error reply raises
    ``redis.ResponseError``, a lost connection ``redis.ConnectionError``, and a call not
    answered within ``timeout`` seconds (or given none: ``timeout <= 0``) ``TimeoutError``.
    """

    name: str  # "resp" or "redis-py": what carries the reads, for logs and tests

    @property
    @abstractmethod
    def client(self) -> redis.asyncio.Redis:
        """A redis-py client on the same settings, for writes and the keys that are not
        snapshot reads (delivery events, experiments, the exposure stream)."""

    @abstractmethod
    async def pipeline(
        self, commands: Sequence[Command], timeout: float | None = None
    ) -> list[Any]:
        """The replies of ``commands`` in order, sent as one pipeline: one round trip (one per
        node on a cluster). No commands: no round trip."""

    async def feed_reads(
        self, user_keys: Sequence[FeedKeys], surface: str, timeout: float | None = None
    ) -> list[Any]:
        """The replies of ``encoding.feed_commands(user_keys, surface)``: four per user (five
        with the live exposures), in one pipeline. A transport may send them in a prebuilt
        form (the hot path)."""
        return await self.pipeline(feed_commands(user_keys, surface), timeout)

    async def delivery_reads(
        self, user_keys: Sequence[FeedKeys], surface: str, timeout: float | None = None
    ) -> list[Any]:
        """The replies of ``encoding.delivery_commands(user_keys, surface)`` (users whose
        snapshot rows the reader already holds): two per user, then one per later key, in one
        pipeline."""
        return await self.pipeline(delivery_commands(user_keys, surface), timeout)

    async def get(self, key: bytes | str) -> bytes | None:
        """GET ``key``: one round trip."""
        return (await self.pipeline([(b"GET", key)]))[0]

    async def hgetall(self, key: bytes | str) -> dict[bytes, bytes]:
        """HGETALL ``key``: one round trip."""
        return (await self.pipeline([(b"HGETALL", key)]))[0]

    def on_connection_lost(self, callback: Callable[[], None]) -> None:
        """Have ``callback`` told whenever an open connection goes, even with no call waiting
        on it (the next connection may reach a restarted, empty server). Transports that cannot
        tell ignore it: their calls still fail with ``redis.ConnectionError``."""
        del callback  # nothing to hook by default

    @abstractmethod
    async def aclose(self) -> None:
        """Close every connection (the redis-py client's too); calls still waiting fail."""
