"""Bad bodies and cancelled calls over a real server: raw bytes through a generic channel call
are INVALID_ARGUMENT (counted, logged rate-limited, no traceback); a call the client cancels
while the service waits on a stopped (SIGSTOP) Redis is counted CANCELLED, never UNKNOWN."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import grpc
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis
from tests.fixtures.chaos import rounds
from tests.fixtures.servers import ServiceThread, scrape_until, wait_for_health
from tests.fixtures.service import SERVING, snapshot

IN_FLIGHT = 'debunk_rpc_in_flight{method="RankFeedBatch"} 1.0'
CANCELLED = 'debunk_rpc_errors_total{code="CANCELLED",method="RankFeedBatch"} 1.0'


def raw_call(channel: grpc.Channel, method: str) -> grpc.UnaryUnaryMultiCallable:
    """A generic call of ``method`` that sends and receives bytes as they are."""
    return channel.unary_unary(
        f"/debunk.v1.DebunkService/{method}",
        request_serializer=None,
        response_deserializer=None,
    )


@rounds
def test_undecodable_bodies_are_invalid_argument_counted_and_logged_rate_limited(
    client: redis.Redis,
    settings: RedisSettings,
    caplog: pytest.LogCaptureFixture,
    chaos_round: int,
) -> None:
    snapshot(client, "v1", [("u1", "r1", "click", 2)])
    svc = ServiceThread(settings, metrics_port=0).start()
    bad = [b"\xff\xff\xff", b"\x0a\x80", b"\x12\x05ab"]  # bad tag, cut varint, cut string
    try:
        with grpc.insecure_channel(svc.target) as ch, caplog.at_level(logging.INFO):
            assert wait_for_health(ch, SERVING) == SERVING
            codes = []
            for i in range(30):
                with pytest.raises(grpc.RpcError) as err:
                    raw_call(ch, "RankFeed")(bad[i % len(bad)], timeout=5)
                codes.append(err.value.code())
            # A good call over the same generic path still works.
            good = raw_call(ch, "RankFeed")(
                pb.RankFeedRequest(user_id="u1", limit=3).SerializeToString(), timeout=5
            )
        assert svc.server is not None and svc.server.metrics_port
        line = 'debunk_rpc_errors_total{code="INVALID_ARGUMENT",method="RankFeed"} 30.0'
        text = scrape_until(svc.server.metrics_port, line)
    finally:
        svc.stop()
    assert codes == [grpc.StatusCode.INVALID_ARGUMENT] * 30
    assert [c.rumor_id for c in pb.RankFeedResponse.FromString(good).cards] == ["r1"]
    assert line in text
    assert "UNKNOWN" not in text
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a bad body"
    warned = [r for r in caplog.records if "undecodable" in r.getMessage()]
    assert 1 <= len(warned) <= 2, "rate-limited: one warning per interval, not one per call"


@rounds
def test_a_call_the_client_cancels_is_counted_cancelled_not_unknown(
    tmp_path: Path, chaos_round: int
) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    assert server._proc is not None
    svc = ServiceThread(RedisSettings(url=server.url), metrics_port=0).start()
    try:
        snapshot(redis.Redis.from_url(server.url), "v1", [("u1", "r1", "click", 2)])
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            batch = raw_call(ch, "RankFeedBatch")
            body = pb.RankFeedBatchRequest(user_ids=["u1"], limit=3).SerializeToString()
            assert svc.server is not None and svc.server.metrics_port
            os.kill(server._proc.pid, signal.SIGSTOP)  # the batch waits on Redis (up to 2 s)
            try:
                future = batch.future(body, timeout=10)
                scrape_until(svc.server.metrics_port, IN_FLIGHT)  # in the handler, on Redis
                assert future.cancel()
                # Redis stays stopped until the cancellation has reached the handler (it
                # would otherwise finish first, the moment Redis answers).
                text = scrape_until(svc.server.metrics_port, CANCELLED, timeout=1.5)
            finally:
                os.kill(server._proc.pid, signal.SIGCONT)
    finally:
        svc.stop()
        server.stop()
    assert CANCELLED in text
    assert "UNKNOWN" not in text
