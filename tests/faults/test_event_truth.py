"""RecordEvents tells the truth and a retry never duplicates: events with ids sent again change
delivery state, daily caps and the event stream once (and the export drops a duplicate that
got past the id's TTL); a write held up by a stopped (SIGSTOP) Redis past the read timeout
answers OK once stored; with Redis gone, UNAVAILABLE and nothing stored."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pyarrow.parquet as pq
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from feature_store import keys
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis
from offline.nightly.export_events import export_events
from tests.fixtures.chaos import rounds
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING, event, snapshot


def feed_cap(client: redis.Redis) -> bytes | None:
    """u1's feed count under the cap key of the UTC day now (or the day before: a run may
    cross midnight between the write and the check)."""
    now = datetime.now(UTC)
    for day in (now, now - timedelta(days=1)):
        value = client.hget(keys.daily_caps("u1", day.strftime("%Y%m%d")), "feed")
        if value is not None:
            return value
    return None


def served(user: str, debunk: str, event_id: str = "") -> pb.DebunkEvent:
    return event(user, debunk, pb.EVENT_TYPE_SERVED, event_id=event_id)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stub_on(own_redis: EmbeddedRedis) -> Iterator[tuple[pb_grpc.DebunkServiceStub, redis.Redis]]:
    """A service over its own redis-server (which a test may stop), and a client of it."""
    client = redis.Redis.from_url(own_redis.url)
    snapshot(client, "v1", [("u1", "r1", "click", 2)])
    svc = ServiceThread(RedisSettings(url=own_redis.url, socket_timeout=2)).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            yield pb_grpc.DebunkServiceStub(ch), client
    finally:
        svc.stop()
        client.close()


@rounds
def test_a_retried_call_with_event_ids_is_recorded_once(
    stub_on: tuple[pb_grpc.DebunkServiceStub, redis.Redis], tmp_path: Path, chaos_round: int
) -> None:
    stub, client = stub_on
    request = pb.RecordEventsRequest(
        events=[served("u1", "d1", "e-1"), served("u1", "d2", "e-2"), served("u1", "d1", "e-1")]
    )
    replies = [stub.RecordEvents(request, timeout=5) for _ in range(3)]  # a caller retrying
    assert [r.accepted for r in replies] == [2, 2, 2]  # the repeated id counts once
    assert feed_cap(client) == b"2"
    assert client.xlen(keys.EVENTS) == 2
    # Without ids, today's behaviour: each call is recorded.
    for _ in range(2):
        stub.RecordEvents(pb.RecordEventsRequest(events=[served("u1", "d3")]), timeout=5)
    assert feed_cap(client) == b"4"
    # The stream's marker outlived (as after its TTL): the retry appends again, export drops it.
    client.delete(keys.event_streamed("e-2"))
    client.script_flush()  # as after a Redis restart: NOSCRIPT, loaded, sent again
    stub.RecordEvents(pb.RecordEventsRequest(events=[served("u1", "d2", "e-2")]), timeout=5)
    assert client.xlen(keys.EVENTS) == 5
    assert feed_cap(client) == b"4", "delivery applied once"
    summary = export_events(client, tmp_path / "out")
    rows = pq.read_table(tmp_path / "out").to_pylist()
    assert summary["duplicates_dropped"] == 1
    assert sorted(r["event_id"] for r in rows) == ["", "", "e-1", "e-2"]


@rounds
def test_a_write_held_past_the_read_timeout_answers_ok_once_stored(
    own_redis: EmbeddedRedis,
    stub_on: tuple[pb_grpc.DebunkServiceStub, redis.Redis],
    chaos_round: int,
) -> None:
    stub, client = stub_on
    assert own_redis._proc is not None
    stub.RecordEvents(pb.RecordEventsRequest(events=[served("u1", "d9", "warm")]), timeout=5)
    request = pb.RecordEventsRequest(events=[served("u1", "d1", "late-1")])
    os.kill(own_redis._proc.pid, signal.SIGSTOP)  # Redis holds the write
    resumer = threading.Timer(0.6, os.kill, (own_redis._proc.pid, signal.SIGCONT))
    resumer.start()
    try:
        started = time.monotonic()
        reply = stub.RecordEvents(request, timeout=5)
        took = time.monotonic() - started
    finally:
        resumer.join()
        os.kill(own_redis._proc.pid, signal.SIGCONT)
    assert reply.accepted == 1, "stored, so OK"
    assert took >= 0.5, "the answer waited for Redis, well past the 250 ms read timeout"
    assert client.exists(keys.event_applied("u1", "late-1"))
    assert feed_cap(client) == b"2"


@rounds
def test_with_redis_gone_events_are_unavailable_and_not_stored(
    own_redis: EmbeddedRedis,
    stub_on: tuple[pb_grpc.DebunkServiceStub, redis.Redis],
    chaos_round: int,
) -> None:
    stub, _ = stub_on
    own_redis.stop()  # saves its data
    with pytest.raises(grpc.RpcError) as err:
        stub.RecordEvents(pb.RecordEventsRequest(events=[served("u1", "d1", "x-1")]), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "not stored" in (err.value.details() or "")  # and a retry is recorded once
    own_redis.start()
    client = redis.Redis.from_url(own_redis.url)
    assert not client.exists(keys.event_applied("u1", "x-1"))
    assert client.xlen(keys.EVENTS) == 0
