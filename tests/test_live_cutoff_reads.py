"""Every read that merges live buckets applies the snapshot's watermark the same way: the feed
read (RankFeed, RankFeedBatch, the A/B arms), the exposure read SearchTop ranks with, and the
exposed-members read of GroupWarnings (HKEYS and HMGET forms). Real redis-server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import redis

from domain.exposure_days import bucket_field
from feature_store import keys
from feature_store.reader import SnapshotReader
from feature_store.settings import RedisSettings
from feature_store.snapshots import SnapshotWriter
from feature_store.transport.factory import open_transport
from tests.fixtures.snapshots import DEBUNKS, RUMORS, state

WATERMARK = int(datetime(2026, 10, 5, 14, tzinfo=UTC).timestamp())
NOW = datetime(2026, 10, 6, 12, tzinfo=UTC).timestamp()
PART = b"\x01" + (2).to_bytes(4, "little") + b"\x00" * 10  # two exposures


@pytest.fixture
def world(client: redis.Redis) -> redis.Redis:
    """v1 with live_after 10-05 14:00; u1's live buckets before and after it, and the next day."""
    w = SnapshotWriter(client, "v1")
    w.write_catalog(RUMORS, DEBUNKS)
    w.write_exposures([state(("u1", "r0", 1))])
    w.commit({"live_after": str(WATERMARK), "run_date": "2026-10-05"})
    client.hset(keys.live_day("u1", "20261005"),
                mapping={bucket_field(13, "r1"): PART, bucket_field(14, "r2"): PART,
                         bucket_field(20, "r1:x"): PART, "r4": PART})  # fmt: skip
    client.hset(keys.live_day("u1", "20261006"),
                mapping={bucket_field(0, "r3"): PART, "r5": PART})  # fmt: skip
    client.hset(keys.live_day("u1", "20261004"), mapping={bucket_field(23, "r6"): PART})
    return client


def _reads(redis_url: str, warm: bool) -> tuple[set, set, set, set]:
    """(user_exposures, feeds_view, exposed_rumors, exposed_rumors among some) rumor sets."""

    async def go() -> tuple[set, set, set, set]:
        transport = open_transport(RedisSettings(url=redis_url))
        reader = SnapshotReader(transport)
        try:
            if warm:
                await reader.catalog("v1")
            search = {s.rumor_id for s in await reader.user_exposures("v1", "u1", now=NOW)}
            (view,) = await reader.feeds_view("v1", ["u1"], surface="feed", now=NOW)
            feed = {s.rumor_id for s in view[0]}
            (group,) = await reader.exposed_rumors("v1", ["u1"], now=NOW)
            (among,) = await reader.exposed_rumors("v1", ["u1"], ["r1", "r2", "r6"], now=NOW)
            return search, feed, group, among
        finally:
            await transport.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("warm", [False, True], ids=["first-read", "cached-meta"])
def test_every_consumer_counts_the_buckets_from_the_watermark_on(
    world: redis.Redis, redis_url: str, warm: bool
) -> None:
    search, feed, group, among = _reads(redis_url, warm)
    after = {"r0", "r2", "r1:x", "r3", "r5"}  # r1 (13h), r4 (hourless on the cut day), r6: not
    assert search == feed == group == after
    assert among == {"r2"}
    states = {s.rumor_id: s for s in _states(redis_url)}
    assert states["r2"].exposures == 2 and "r1" not in states


def test_a_snapshot_without_a_watermark_covers_its_whole_run_date(
    client: redis.Redis, redis_url: str
) -> None:
    w = SnapshotWriter(client, "v0")
    w.write_catalog(RUMORS, DEBUNKS)
    w.write_exposures([state(("u1", "r0", 1))])
    w.commit({"run_date": "2026-10-05"})
    client.hset(keys.live_day("u1", "20261005"), mapping={bucket_field(20, "r1"): PART})
    client.hset(keys.live_day("u1", "20261006"), mapping={"r5": PART})

    async def go() -> set[str]:
        transport = open_transport(RedisSettings(url=redis_url))
        try:
            states = await SnapshotReader(transport).user_exposures("v0", "u1", now=NOW)
            return {s.rumor_id for s in states}
        finally:
            await transport.aclose()

    assert asyncio.run(go()) == {"r0", "r5"}


def _states(redis_url: str) -> list:
    """u1's merged states in v1 at NOW."""

    async def go() -> list:
        transport = open_transport(RedisSettings(url=redis_url))
        try:
            return await SnapshotReader(transport).user_exposures("v1", "u1", now=NOW)
        finally:
            await transport.aclose()

    return asyncio.run(go())
