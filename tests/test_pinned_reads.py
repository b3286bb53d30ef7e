"""The reads behind GroupWarnings (which members saw which rumors, which rumors tagged items
carry) answer the same through the RESP transport as through redis-py, in one round trip, and
degrade the same way when Redis is gone."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from feature_store.connection import RedisSettings
from feature_store.reader import SnapshotReader
from feature_store.snapshots import SnapshotWriter
from feature_store.transport.redis_py import RedisPyTransport
from feature_store.transport.resp import RespTransport
from feature_store.transport.resp_pool import RespPool
from tests.fixtures.snapshots import DEBUNKS, RUMORS, state

MEMBERS = ["u1", "u2", "u3", "nobody"]
RUMOR_IDS = ["r1", "r2", "r3", "r9"]
ITEMS = ["i1", "i2", "unknown", "i1"]


@pytest.fixture
def snapshot(client: redis.Redis) -> str:
    w = SnapshotWriter(client, "v1")
    w.write_catalog(RUMORS, DEBUNKS)
    w.write_items({"i1": ["r1"], "i2": ["r2", "r3"]})
    rows = [("u1", "r1", 1), ("u1", "r3", 2), ("u2", "r3", 1), ("u3", "r2", 5)]
    w.write_exposures([state(*rows)])
    w.commit()
    return "v1"


class CountingPool(RespPool):
    """Counts pipelines sent: one per round trip."""

    calls = 0

    async def send(self, payload, n, timeout=None):
        CountingPool.calls += 1
        return await super().send(payload, n, timeout)


def counted_resp(settings: RedisSettings, size: int) -> RespTransport:
    """The RESP transport, its pipelines counted in CountingPool.calls."""
    transport = RespTransport(settings, size=size)
    transport.pool = CountingPool(settings, size=size)
    return transport


def read_both(settings: RedisSettings, version: str, members, rumor_ids, items):
    async def go():
        slow_transport = RedisPyTransport(settings.async_client())
        fast_transport = counted_resp(settings, size=2)
        try:
            slow, fast = SnapshotReader(slow_transport), SnapshotReader(fast_transport)
            return (
                await slow.exposed_rumors(version, members, rumor_ids),
                await fast.exposed_rumors(version, members, rumor_ids),
                await slow.items_rumors(version, items),
                await fast.items_rumors(version, items),
            )
        finally:
            await fast_transport.aclose()
            await slow_transport.aclose()

    return asyncio.run(go())


def test_exposed_members_and_item_rumors_are_the_same_through_resp_and_redis_py(
    snapshot: str, settings: RedisSettings
) -> None:
    CountingPool.calls = 0
    slow_exp, fast_exp, slow_items, fast_items = read_both(
        settings, snapshot, MEMBERS, RUMOR_IDS, ITEMS
    )
    assert fast_exp == slow_exp == [{"r1", "r3"}, {"r3"}, {"r2"}, set()]
    assert fast_items == slow_items == [["r1"], ["r2", "r3"], [], ["r1"]]
    assert CountingPool.calls == 2  # one round trip for each read


def test_exposed_rumors_of_only_some_or_all_of_them(snapshot: str, settings: RedisSettings) -> None:
    CountingPool.calls = 0
    some = read_both(settings, snapshot, MEMBERS, ["r3", "r9"], [])[:2]
    every = read_both(settings, snapshot, MEMBERS, None, [])[:2]
    assert some == ([{"r3"}, {"r3"}, set(), set()],) * 2  # HMGET of the rumors asked about
    assert every == ([{"r1", "r3"}, {"r3"}, {"r2"}, set()],) * 2  # HKEYS: all they saw
    assert CountingPool.calls == 2


def test_empty_members_rumors_or_items_need_no_round_trip(
    snapshot: str, settings: RedisSettings
) -> None:
    CountingPool.calls = 0
    assert read_both(settings, snapshot, [], ["r1"], []) == ([], [], [], [])
    assert read_both(settings, snapshot, [], None, [])[:2] == ([], [])
    assert read_both(settings, snapshot, ["u1"], [], [])[:2] == ([set()], [set()])
    assert CountingPool.calls == 0


def test_the_resp_reads_raise_a_store_error_when_redis_is_gone() -> None:
    from service.servicer import STORE_ERRORS

    settings = RedisSettings(url="redis://127.0.0.1:1")  # nothing listens on port 1

    async def go(read: str, transport: RespTransport | RedisPyTransport) -> None:
        reader = SnapshotReader(transport)
        try:
            if read == "exposed":
                await reader.exposed_rumors("v1", ["u1"], ["r1"])
            else:
                await reader.items_rumors("v1", ["i1"])
        finally:
            await transport.aclose()

    for read in ("exposed", "items"):
        with pytest.raises(redis.ConnectionError):  # one of STORE_ERRORS, on both transports
            asyncio.run(go(read, RespTransport(settings)))
        with pytest.raises(STORE_ERRORS):
            asyncio.run(go(read, RedisPyTransport(settings.async_client())))
    assert issubclass(redis.ConnectionError, STORE_ERRORS)


def test_a_searchers_exposures_are_the_same_through_resp_and_redis_py(
    snapshot: str, settings: RedisSettings
) -> None:
    async def go():
        slow_transport = RedisPyTransport(settings.async_client())
        fast_transport = counted_resp(settings, size=1)
        try:
            slow, fast = SnapshotReader(slow_transport), SnapshotReader(fast_transport)
            return [
                (await slow.user_exposures(snapshot, u), await fast.user_exposures(snapshot, u))
                for u in ("u1", "nobody")
            ]
        finally:
            await fast_transport.aclose()
            await slow_transport.aclose()

    CountingPool.calls = 0
    (slow_u1, fast_u1), (slow_none, fast_none) = asyncio.run(go())
    assert sorted(fast_u1, key=lambda e: e.rumor_id) == sorted(slow_u1, key=lambda e: e.rumor_id)
    assert [e.rumor_id for e in sorted(fast_u1, key=lambda e: e.rumor_id)] == ["r1", "r3"]
    assert fast_none == slow_none == []
    assert CountingPool.calls == 2  # one round trip per read
