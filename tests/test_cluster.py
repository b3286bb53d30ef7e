"""The store against a real 3-node Redis Cluster on loopback: same code, one slot per user."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.delivery import DeliveryEvent, day_of
from feature_store import keys
from feature_store.connection import RedisSettings
from feature_store.delivery import queue_events
from feature_store.reader import SnapshotReader
from feature_store.transport.factory import open_transport
from feature_store.transport.redis_py import RedisPyTransport
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.snapshots import write


@pytest.fixture
def cclient(cluster_settings: RedisSettings) -> Iterator[redis.RedisCluster]:
    c = cluster_settings.sync_client()
    c.flushdb(target_nodes=redis.RedisCluster.PRIMARIES)
    yield c
    c.close()


def test_all_keys_of_one_user_share_a_slot(cclient: redis.RedisCluster) -> None:
    slots = {
        cclient.keyslot(k)
        for k in (
            keys.user_exposures("v1", "u42"),
            keys.user_exposures("v2", "u42"),
            keys.delivery("u42"),
            keys.daily_caps("u42", "20261007"),
        )
    }
    assert len(slots) == 1
    assert cclient.keyslot(keys.CURRENT) == cclient.keyslot(keys.VERSIONS)


def test_the_cluster_really_spreads_users_over_nodes(cclient: redis.RedisCluster) -> None:
    write(cclient, "v1", *[(f"u{i}", "r1", 1) for i in range(200)])
    per_node = [n.redis_connection.dbsize() for n in cclient.get_primaries()]
    assert len(per_node) == 3 and all(n > 0 for n in per_node)


def test_snapshots_flip_and_collect_on_a_cluster(cclient: redis.RedisCluster) -> None:
    for v in ("v1", "v2", "v3"):
        write(cclient, v, ("u1", "r1", int(v[1])), ("u2", "r1", 1))
    assert cclient.get(keys.CURRENT) == b"v3"
    assert cclient.zrange(keys.VERSIONS, 0, -1) == [b"v2", b"v3"]
    assert not cclient.exists(keys.user_exposures("v1", "u1"))


def test_feed_view_and_delivery_on_a_cluster(
    cclient: redis.RedisCluster, cluster_settings: RedisSettings
) -> None:
    write(cclient, "v1", ("u1", "r1", 3))
    now = time.time()
    pipe = cclient.pipeline(transaction=False)
    queue_events(pipe, [DeliveryEvent("u1", "d1", "r1", "feed", "served", int(now))])
    pipe.execute()
    assert cclient.hget(keys.daily_caps("u1", day_of(now)), "feed") == b"1"

    async def go():
        transport = open_transport(cluster_settings)
        assert isinstance(transport, RedisPyTransport)  # redis-py routes keys to their nodes
        try:
            return await SnapshotReader(transport).feed_view("v1", "u1", surface="feed", now=now)
        finally:
            await transport.aclose()

    exposures, delivery, _ = asyncio.run(go())
    assert [e.exposures for e in exposures] == [3] and delivery.served_today == 1


def test_rank_feed_over_grpc_backed_by_the_cluster(
    cclient: redis.RedisCluster, cluster_settings: RedisSettings, tmp_path: Path
) -> None:
    write(cclient, "v1", ("u1", "r1", 3))
    svc = ServiceThread(cluster_settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, health_pb2.HealthCheckResponse.SERVING) == 1
            reply = pb_grpc.DebunkServiceStub(ch).RankFeed(
                pb.RankFeedRequest(user_id="u1", limit=5), timeout=5
            )
            assert [c.debunk_id for c in reply.cards] == ["d1"] and not reply.degraded
    finally:
        svc.stop()


def test_events_with_ids_are_recorded_once_on_the_cluster(
    cclient: redis.RedisCluster, cluster_settings: RedisSettings
) -> None:
    """The per-slot scripts on a cluster: users on different nodes, each call sent twice."""
    write(cclient, "v1", ("u1", "r1", 3))
    users = [f"user{i}" for i in range(12)]  # spread over the three nodes
    now = int(time.time())
    events = [
        pb.DebunkEvent(user_id=u, debunk_id="d1", surface=pb.SURFACE_FEED,
                       event=pb.EVENT_TYPE_SERVED, event_id=f"ev-{u}")
        for u in users
    ]  # fmt: skip
    for e in events:
        e.ts.FromSeconds(now)
    svc = ServiceThread(cluster_settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, health_pb2.HealthCheckResponse.SERVING) == 1
            stub = pb_grpc.DebunkServiceStub(ch)
            for _ in range(2):
                stub.RecordEvents(pb.RecordEventsRequest(events=events), timeout=5)
    finally:
        svc.stop()
    day = day_of(now)
    assert [cclient.hget(keys.daily_caps(u, day), "feed") for u in users] == [b"1"] * 12
    assert cclient.xlen(keys.EVENTS) == 12
