"""The redis-py transport, for Redis Cluster: redis-py routes each command to the node that
owns its key (a user's keys share one hash tag, so a feed read is one round trip per node)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import redis.asyncio
import redis.exceptions

from feature_store.transport.base import StoreTransport
from feature_store.transport.encoding import Command


@contextlib.contextmanager
def _as_contract_errors() -> Iterator[None]:
    """redis-py's own failures as the interface names them: a reply that timed out as
    TimeoutError, a cluster it cannot reach (not a RedisError) as redis.ConnectionError."""
    try:
        yield
    except redis.exceptions.TimeoutError as e:
        raise TimeoutError(str(e)) from e
    except redis.exceptions.RedisClusterException as e:
        raise redis.ConnectionError(str(e)) from e


class RedisPyTransport(StoreTransport):
    """Reads as redis-py pipelines on ``client`` (a cluster client, or a single-node one), each
    within an ``asyncio.timeout`` scope (and every reply within the settings' socket timeout)."""

    name = "redis-py"

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client

    @property
    def client(self) -> redis.asyncio.Redis:
        return self._client

    async def pipeline(
        self, commands: Sequence[Command], timeout: float | None = None
    ) -> list[Any]:
        if not commands:
            return []
        if timeout is not None and timeout <= 0:
            raise TimeoutError("no time left for Redis")
        with _as_contract_errors():
            async with asyncio.timeout(timeout), self._client.pipeline(transaction=False) as pipe:
                for command in commands:
                    # redis-py picks its reply parsing (and, on a cluster, the node) by the name
                    name, *args = command
                    pipe.execute_command(name.decode() if isinstance(name, bytes) else name, *args)
                return await pipe.execute()

    async def get(self, key: bytes | str) -> bytes | None:
        with _as_contract_errors():
            return await self._client.get(key)

    async def hgetall(self, key: bytes | str) -> dict[bytes, bytes]:
        with _as_contract_errors():
            return await self._client.hgetall(key)

    async def aclose(self) -> None:
        await self._client.aclose()
