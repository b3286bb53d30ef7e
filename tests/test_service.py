"""The gRPC service over a real channel on loopback, backed by a real redis-server."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
import redis
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import NOT_SERVING, SERVING, snapshot


@pytest.fixture
def service(client: redis.Redis, settings: RedisSettings) -> Iterator[ServiceThread]:
    svc = ServiceThread(settings).start()
    yield svc
    svc.stop()


@pytest.fixture
def channel(service: ServiceThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(service.target) as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.DebunkServiceStub:
    return pb_grpc.DebunkServiceStub(channel)


@pytest.fixture
def loaded(client: redis.Redis, channel: grpc.Channel) -> None:
    snapshot(
        client,
        "v1",
        [
            ("u1", "r1", "click", 2),
            ("u1", "r2", "share", 1),
            ("u1", "r3", "share", 3),
            ("u2", "r2", "impression", 4),
        ],
    )
    assert wait_for_health(channel, SERVING) == SERVING


def test_not_serving_until_a_snapshot_is_loaded(client: redis.Redis, channel: grpc.Channel) -> None:
    assert wait_for_health(channel, NOT_SERVING) == NOT_SERVING
    snapshot(client, "v1", [("u1", "r1", "click", 2)])
    assert wait_for_health(channel, SERVING) == SERVING


@pytest.mark.usefixtures("loaded")
def test_rank_feed_returns_ranked_cards_with_reasons(stub: pb_grpc.DebunkServiceStub) -> None:
    reply = stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=10), timeout=5)
    assert [c.rumor_id for c in reply.cards] == ["r2", "r1"]  # share before click; r3 withdrawn
    assert [c.debunk_id for c in reply.cards] == ["d2", "d1"]  # d1 (official) beats d1m (media)
    first = reply.cards[0]
    assert (
        first.publisher == "微博辟谣"
        and first.url == "https://x/d2"
        and first.authority == "platform"
    )
    assert first.reason.action == pb.ACTION_SHARE and first.reason.exposures == 2
    assert list(first.reason.surfaces) == [pb.SURFACE_FEED]
    assert first.reason.last_exposed_at.seconds == int(
        datetime(2026, 10, 1, tzinfo=UTC).timestamp()
    )
    assert "share on feed" in first.reason.text
    assert reply.cards[0].score > reply.cards[1].score
    assert reply.snapshot_version == "v1" and not reply.degraded


@pytest.mark.usefixtures("loaded")
def test_limit_caps_the_cards(stub: pb_grpc.DebunkServiceStub) -> None:
    reply = stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=1), timeout=5)
    assert [c.rumor_id for c in reply.cards] == ["r2"]


@pytest.mark.usefixtures("loaded")
def test_unknown_user_gets_an_empty_list_not_an_error(stub: pb_grpc.DebunkServiceStub) -> None:
    reply = stub.RankFeed(pb.RankFeedRequest(user_id="never-seen", limit=5), timeout=5)
    assert list(reply.cards) == [] and reply.snapshot_version == "v1"


@pytest.mark.usefixtures("loaded")
@pytest.mark.parametrize(
    ("user_id", "limit", "message"),
    [
        ("", 5, "user_id must be a non-empty string"),
        ("x" * 129, 5, "user_id is longer than 128"),
        ("u{1}", 5, "user_id may only contain"),
        ("u1", 0, "limit must be between 1 and 50, got 0"),
        ("u1", 51, "limit must be between 1 and 50, got 51"),
        ("u1", -3, "limit must be between 1 and 50, got -3"),
    ],
)
def test_bad_requests_are_invalid_argument_with_a_message(
    stub: pb_grpc.DebunkServiceStub, user_id: str, limit: int, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.RankFeed(pb.RankFeedRequest(user_id=user_id, limit=limit), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


@pytest.mark.usefixtures("loaded")
def test_a_flip_is_noticed_within_a_second(
    client: redis.Redis, stub: pb_grpc.DebunkServiceStub
) -> None:
    snapshot(client, "v2", [("u2", "r1", "share", 5)])
    deadline = time.monotonic() + 1.0
    reply = stub.RankFeed(pb.RankFeedRequest(user_id="u2", limit=5), timeout=5)
    while reply.snapshot_version != "v2" and time.monotonic() < deadline:
        reply = stub.RankFeed(pb.RankFeedRequest(user_id="u2", limit=5), timeout=5)
    assert reply.snapshot_version == "v2"
    assert [c.rumor_id for c in reply.cards] == ["r1"]


def test_reflection_lists_the_service(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    [reply] = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in reply.list_services_response.service}
    assert {"debunk.v1.DebunkService", "grpc.health.v1.Health"} <= names


@contextlib.contextmanager
def u1_feed(
    server: EmbeddedRedis, timeout: float, url: str | None = None
) -> Iterator[Callable[[], pb.RankFeedResponse]]:
    """A service over ``server`` (at ``url``: its TCP port by default) with a snapshot in which
    u1 clicked r1, and a RankFeed call for u1 with the given deadline."""
    svc = ServiceThread(RedisSettings(url=url or server.url, socket_timeout=0.2)).start()
    try:
        snapshot(redis.Redis.from_url(server.url), "v1", [("u1", "r1", "click", 2)])
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            stub = pb_grpc.DebunkServiceStub(ch)
            yield lambda: stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=3), timeout=timeout)
    finally:
        svc.stop()


def first_whole_answer(call: Callable[[], pb.RankFeedResponse]) -> pb.RankFeedResponse:
    """Call until an answer is no longer degraded (for at most 10 s); that answer."""
    deadline = time.monotonic() + 10
    reply = call()
    while reply.degraded and time.monotonic() < deadline:
        reply = call()
    return reply


# The service reads over the pipelined RESP lanes both ways: TCP and the local unix socket.
TRANSPORTS = pytest.mark.parametrize("transport", ["tcp", "unix"])


def _url(server: EmbeddedRedis, transport: str) -> str:
    if transport == "unix":
        assert server.local_url.startswith("unix://")
        return server.local_url
    return server.url


@TRANSPORTS
def test_feed_degrades_while_redis_is_down_and_recovers_when_it_returns(
    tmp_path: Path, transport: str
) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    try:
        with u1_feed(server, timeout=2, url=_url(server, transport)) as call:
            assert len(call().cards) == 1
            server.stop()  # saves its data and exits
            down = [call() for _ in range(20)]
            assert all(r.degraded and not r.cards for r in down)
            assert all(r.snapshot_version == "v1" for r in down)
            server = EmbeddedRedis(tmp_path, port=port)
            server.start()  # back, with the same data, on the same port
            reply = first_whole_answer(call)
            assert not reply.degraded and [c.rumor_id for c in reply.cards] == ["r1"]
    finally:
        server.stop()


@TRANSPORTS
def test_feed_degrades_while_redis_hangs_and_recovers_when_it_resumes(
    tmp_path: Path, transport: str
) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    assert server._proc is not None
    try:
        # A reply, not DEADLINE_EXCEEDED, means the service answered inside the deadline.
        with u1_feed(server, timeout=0.5, url=_url(server, transport)) as call:
            assert len(call().cards) == 1
            os.kill(server._proc.pid, signal.SIGSTOP)  # alive, connected, answering nothing
            try:
                hung = [call() for _ in range(10)]
            finally:
                os.kill(server._proc.pid, signal.SIGCONT)
            assert all(r.degraded and not r.cards for r in hung)
            reply = first_whole_answer(call)
            assert not reply.degraded and [c.rumor_id for c in reply.cards] == ["r1"]
    finally:
        server.stop()
