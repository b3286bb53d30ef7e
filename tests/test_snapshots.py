"""Snapshots in a real Redis: invisible until committed, one atomic flip, old versions collected."""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio

from feature_store import keys
from feature_store.reader import SnapshotReader
from feature_store.settings import RedisSettings
from feature_store.snapshots import SnapshotWriter, collect_garbage, current_version
from feature_store.transport.factory import open_transport
from tests.fixtures.snapshots import DEBUNKS, RUMORS, state, write


def read_user(url: str, version: str, user: str) -> dict[str, int]:
    async def go() -> dict[str, int]:
        transport = open_transport(RedisSettings(url=url))
        try:
            states = await SnapshotReader(transport).user_exposures(version, user)
            return {s.rumor_id: s.exposures for s in states}
        finally:
            await transport.aclose()

    return asyncio.run(go())


def test_nothing_is_visible_before_commit(client: redis.Redis) -> None:
    w = SnapshotWriter(client, "v1")
    w.write_catalog(RUMORS, DEBUNKS)
    w.write_exposures([state(("u1", "r1", 2))])
    assert current_version(client) is None
    w.commit()
    assert current_version(client) == "v1"


def test_commit_flips_the_pointer_and_records_the_version(client: redis.Redis) -> None:
    write(client, "v1", ("u1", "r1", 1))
    write(client, "v2", ("u1", "r1", 5))
    assert client.get(keys.CURRENT) == b"v2"
    assert client.zrange(keys.VERSIONS, 0, -1) == [b"v1", b"v2"]
    assert client.hget(keys.meta("v2"), "state") == b"complete"
    assert not client.exists(keys.WRITING)
    assert client.hget(keys.meta("v2"), "pairs") == b"1"


def test_users_are_written_under_their_versioned_key(client: redis.Redis, redis_url: str) -> None:
    write(client, "v1", ("u1", "r1", 3), ("u1", "r2", 1), ("u2", "r1", 7))
    assert read_user(redis_url, "v1", "u1") == {"r1": 3, "r2": 1}
    assert read_user(redis_url, "v1", "u2") == {"r1": 7}
    assert read_user(redis_url, "v1", "nobody") == {}
    assert client.exists(b"dbk:v:v1:u:{u1}")


def test_old_versions_beyond_keep_are_collected(client: redis.Redis) -> None:
    for v in ("v1", "v2", "v3"):
        write(client, v, ("u1", "r1", 1), keep=2)
    assert client.zrange(keys.VERSIONS, 0, -1) == [b"v2", b"v3"]
    assert not client.exists(keys.user_exposures("v1", "u1"), keys.meta("v1"), keys.rumors("v1"))
    assert client.exists(keys.user_exposures("v2", "u1"))


def test_rerunning_a_killed_version_starts_clean(client: redis.Redis) -> None:
    w = SnapshotWriter(client, "v1")
    w.write_exposures([state(("ghost", "r1", 9))])  # killed before commit
    write(client, "v1", ("u1", "r1", 1))
    assert not client.exists(keys.user_exposures("v1", "ghost"))
    assert current_version(client) == "v1"


def test_invalid_ids_are_skipped_and_counted(client: redis.Redis) -> None:
    w = SnapshotWriter(client, "v1")
    w.write_exposures([state(("u{1}", "r1", 1), ("u 2", "r1", 1), ("u3", "r1", 1))])
    summary = w.commit()
    assert summary.skipped_invalid_ids == 2 and summary.users == 1
    assert [k for k in client.scan_iter(match=b"dbk:v:v1:u:*")] == [b"dbk:v:v1:u:{u3}"]


def test_abandoned_partial_writes_are_collected_when_stale(client: redis.Redis) -> None:
    SnapshotWriter(client, "vold").write_exposures([state(("u1", "r1", 1))])
    client.hset(keys.WRITING, "vold", 0)  # started long ago, never committed
    SnapshotWriter(client, "vbusy")  # started just now: a writer may still be busy with it
    write(client, "v1", ("u1", "r1", 1))
    assert not client.exists(keys.meta("vold"), keys.user_exposures("vold", "u1"))
    assert client.hkeys(keys.WRITING) == [b"vbusy"]
    assert client.exists(keys.meta("vbusy"))
    assert collect_garbage(client, abandon_after_s=0) == ["vbusy"]


def test_catalog_is_read_once_per_version(client: redis.Redis, redis_url: str) -> None:
    write(client, "v1", ("u1", "r1", 1))

    async def go() -> tuple[bool, str]:
        c = open_transport(RedisSettings(url=redis_url))
        try:
            reader = SnapshotReader(c)
            first = await reader.catalog("v1")
            client.hset(keys.rumors("v1"), "r2", b"{}")  # changed behind its back
            second = await reader.catalog("v1")
            return first is second, second.debunks_by_rumor["r1"][0].debunk_id
        finally:
            await c.aclose()

    same, best = asyncio.run(go())
    assert same and best == "d1"
