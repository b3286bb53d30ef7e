"""Prometheus metrics: latency per RPC, errors by code, degraded answers, the snapshot version,
and never a user id in a label."""

from __future__ import annotations

import grpc
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from feature_store.connection import RedisSettings
from tests.fixtures.servers import ServiceThread, scrape_until, wait_for_health
from tests.fixtures.service import SERVING, snapshot


def test_metrics_count_latency_errors_and_the_snapshot(
    client: redis.Redis, settings: RedisSettings
) -> None:
    snapshot(client, "v7", [("user-secret-42", "r1", "click", 2)])
    svc = ServiceThread(settings, metrics_port=0).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            stub = pb_grpc.DebunkServiceStub(ch)
            for _ in range(3):
                stub.RankFeed(pb.RankFeedRequest(user_id="user-secret-42", limit=3), timeout=5)
            with pytest.raises(grpc.RpcError):
                stub.RankFeed(pb.RankFeedRequest(user_id="user-secret-42", limit=0), timeout=5)
        assert svc.server is not None and svc.server.metrics_port
        text = scrape_until(
            svc.server.metrics_port, 'debunk_rpc_latency_seconds_count{method="RankFeed"} 4.0'
        )
    finally:
        svc.stop()
    assert 'debunk_rpc_latency_seconds_count{method="RankFeed"} 4.0' in text
    assert 'debunk_rpc_errors_total{code="INVALID_ARGUMENT",method="RankFeed"} 1.0' in text
    assert 'debunk_snapshot_info{version="v7"} 1.0' in text
    assert "user-secret-42" not in text
