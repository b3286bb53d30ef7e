"""The pinned snapshot gone, or Redis gone: a real redis-server SIGKILLed and restarted empty on
the same port while RankFeed calls keep coming, or killed and left dead. Never an empty answer
that is not flagged degraded; health NOT_SERVING while it lasts; recovery by itself."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from feature_store import keys
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis, RedisStartError
from tests.fixtures.chaos import rounds
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import NOT_SERVING, SERVING, snapshot

ROWS = [("u1", "r1", "click", 2)]


class Feeds:
    """u1's RankFeed called in a loop on a thread; every answer (or error code) is kept."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.DebunkServiceStub(self.channel)
        self.answers: list[pb.RankFeedResponse] = []
        self.errors: list[grpc.StatusCode] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.answers.append(
                    self.stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=3), timeout=1)
                )
            except grpc.RpcError as e:
                self.errors.append(e.code())

    def __enter__(self) -> Feeds:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.channel.close()

    def wait_for(self, want: Callable[[pb.RankFeedResponse], bool], timeout: float = 10) -> bool:
        """Until an answer is ``want``ed (False when ``timeout`` seconds pass first)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            answers = self.answers[seen:]
            if any(want(a) for a in answers):
                return True
            seen += len(answers)
            time.sleep(0.01)
        return False

    def whole_but_empty(self) -> list[pb.RankFeedResponse]:
        """Answers that claim to be whole (not degraded) yet hold no card for u1."""
        return [a for a in self.answers if not a.degraded and not a.cards]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "a", supervise=False)  # these tests restart it themselves
    server.start()
    yield server
    server.stop()


def port_of(server: EmbeddedRedis) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


def start_on(server: EmbeddedRedis, attempts: int = 3) -> None:
    """Start ``server`` on its fixed port. The launcher forks from this multi-threaded process
    (gRPC's threads), and a start now and then fails without a log line; that is the
    launcher's business, not what these tests are about, so it gets another try."""
    for attempt in range(attempts):
        try:
            server.start()
            return
        except RedisStartError:
            if attempt == attempts - 1:
                raise


def kill(server: EmbeddedRedis) -> None:
    assert server._proc is not None
    os.kill(server._proc.pid, signal.SIGKILL)
    server._proc.wait(timeout=10)
    server.stop()


def forget_data(server: EmbeddedRedis) -> None:
    """Remove what a stopped server persisted, so that its next start is empty (same folder:
    same password and port, as an operator's restarted-empty Redis would be)."""
    for name in ("appendonly.aof", "dump.rdb"):
        (server.data_dir / name).unlink(missing_ok=True)


@rounds
def test_redis_restarted_empty_degrades_and_recovers_when_a_snapshot_is_back(
    tmp_path: Path, own_redis: EmbeddedRedis, chaos_round: int
) -> None:
    port = port_of(own_redis)
    snapshot(redis.Redis.from_url(own_redis.url), "v1", ROWS)
    svc = ServiceThread(RedisSettings(url=own_redis.url, socket_timeout=0.5)).start()
    fresh = EmbeddedRedis(tmp_path / "a", port=port, supervise=False)  # same port, no data
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            with Feeds(svc.target) as feeds:
                kill(own_redis)
                forget_data(own_redis)
                start_on(fresh)
                assert wait_for_health(ch, NOT_SERVING) == NOT_SERVING
                during = len(feeds.answers)
                snapshot(redis.Redis.from_url(fresh.url), "v2", ROWS)  # the nightly job again
                assert wait_for_health(ch, SERVING) == SERVING
                assert feeds.wait_for(lambda a: a.snapshot_version == "v2" and not a.degraded)
        after = feeds.answers[during:]
    finally:
        svc.stop()
        fresh.stop()
    assert feeds.whole_but_empty() == []
    assert not feeds.errors
    assert any(a.degraded for a in feeds.answers[:during])
    assert any(not a.degraded and a.snapshot_version == "v2" and a.cards for a in after)


@rounds
def test_a_quiet_restart_to_an_empty_redis_is_never_answered_as_whole(
    tmp_path: Path, own_redis: EmbeddedRedis, chaos_round: int
) -> None:
    """No call is in flight while Redis dies and comes back empty, and the watcher polls only
    every 30 s: the first feed after the restart must still say it is degraded (the lost
    connection is noticed by itself, not by a call that failed on it)."""
    port = port_of(own_redis)
    snapshot(redis.Redis.from_url(own_redis.url), "v1", ROWS)
    svc = ServiceThread(RedisSettings(url=own_redis.url, socket_timeout=0.5), poll_interval=30)
    svc.start()
    fresh = EmbeddedRedis(tmp_path / "a", port=port, supervise=False)
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            stub = pb_grpc.DebunkServiceStub(ch)
            whole = stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=3), timeout=2)
            assert whole.cards and not whole.degraded
            kill(own_redis)
            forget_data(own_redis)
            start_on(fresh)
            first = stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=3), timeout=2)
            assert first.degraded, "an empty Redis answered as if the feed were whole"
            assert wait_for_health(ch, NOT_SERVING) == NOT_SERVING
    finally:
        svc.stop()
        fresh.stop()


@rounds
def test_redis_dead_turns_health_not_serving_and_back_when_it_answers(
    tmp_path: Path, own_redis: EmbeddedRedis, chaos_round: int
) -> None:
    port = port_of(own_redis)
    snapshot(redis.Redis.from_url(own_redis.url), "v1", ROWS)
    own_redis.stop()  # saves its data: the restart below brings v1 back
    own_redis = EmbeddedRedis(tmp_path / "a", port=port, supervise=False)
    start_on(own_redis)
    svc = ServiceThread(RedisSettings(url=own_redis.url, socket_timeout=0.5)).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            with Feeds(svc.target) as feeds:
                own_redis.stop()
                assert wait_for_health(ch, NOT_SERVING) == NOT_SERVING
                down = list(feeds.answers)
                start_on(own_redis)
                assert wait_for_health(ch, SERVING) == SERVING
                recovered = feeds.wait_for(lambda a: bool(a.cards) and not a.degraded)
    finally:
        svc.stop()
        own_redis.stop()
    assert feeds.whole_but_empty() == []
    assert not feeds.errors, "answers stay degraded, never errors"
    assert down and down[-1].degraded
    assert recovered, "whole answers again once Redis answers"


def test_pinned_keys_deleted_degrade_until_a_new_snapshot(
    client: redis.Redis, settings: RedisSettings
) -> None:
    snapshot(client, "v1", ROWS)
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            stub = pb_grpc.DebunkServiceStub(ch)
            for key in client.scan_iter(match=keys.version_pattern("v1")):
                client.delete(key)  # the pointer stays, naming keys that are gone
            assert wait_for_health(ch, NOT_SERVING) == NOT_SERVING
            gone = stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=3), timeout=1)
            snapshot(client, "v2", ROWS)
            assert wait_for_health(ch, SERVING) == SERVING
            back = stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=3), timeout=1)
    finally:
        svc.stop()
    assert gone.degraded and gone.snapshot_version == "v1" and not gone.cards
    assert not back.degraded and back.snapshot_version == "v2" and len(back.cards) == 1
