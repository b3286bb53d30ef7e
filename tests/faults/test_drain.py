"""SIGTERM drains: ``debunk serve`` as a subprocess, ~20 RankFeedBatch calls in flight, SIGTERM.
Health turns NOT_SERVING while the port still serves (for ``--drain-s``), then the listener
closes, every call in flight completes OK, and the process exits 0."""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass, field

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from tests.fixtures.chaos import rounds
from tests.fixtures.servers import ServeProcess
from tests.fixtures.service import NOT_SERVING, snapshot

USERS = [f"u{i:04d}" for i in range(1000)]
DRAIN_S = 1.0


@dataclass
class Drain:
    """What a client saw around one SIGTERM (times from the signal, in seconds)."""

    codes: list[grpc.StatusCode] = field(default_factory=list)
    in_flight_at_signal: int = 0
    not_serving_at: float | None = None
    refused_at: float | None = None
    served_while_draining: bool = False
    exit_code: int | None = None


def refused(port: int) -> bool:
    """Whether a new TCP connection to ``port`` is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def answers(stub: pb_grpc.DebunkServiceStub) -> bool:
    """Whether a RankFeed call is answered OK from a snapshot."""
    try:
        reply = stub.RankFeed(pb.RankFeedRequest(user_id=USERS[0], limit=3), timeout=5)
    except grpc.RpcError:
        return False
    return bool(reply.snapshot_version)


def sigterm_under_load(serve: ServeProcess, calls: int = 20) -> Drain:
    """Start ``calls`` batches, SIGTERM the service, watch health and the port until it refuses,
    then collect how each call ended."""
    assert serve.proc is not None
    out = Drain()
    request = pb.RankFeedBatchRequest(user_ids=USERS, limit=3)
    with grpc.insecure_channel(serve.target) as ch, grpc.insecure_channel(serve.target) as probe:
        stub = pb_grpc.DebunkServiceStub(ch)
        health = health_pb2_grpc.HealthStub(probe)
        probe_feed = pb_grpc.DebunkServiceStub(probe)
        health.Check(health_pb2.HealthCheckRequest(), timeout=5)  # the probe is connected
        futures = [stub.RankFeedBatch.future(request, timeout=30) for _ in range(calls)]
        time.sleep(0.05)  # let the calls reach the server (they are then in flight)
        out.in_flight_at_signal = sum(not f.done() for f in futures)
        signalled = time.monotonic()
        os.kill(serve.proc.pid, signal.SIGTERM)
        while time.monotonic() - signalled < 30:
            now = time.monotonic() - signalled
            if refused(serve.port):
                out.refused_at = now
                break
            if out.not_serving_at is None:
                try:
                    status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                except grpc.RpcError:
                    status = -1
                if status == NOT_SERVING:
                    out.not_serving_at = now
                    out.served_while_draining = answers(probe_feed)
            time.sleep(0.002)
        for f in futures:
            try:
                f.result()
                out.codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as e:
                out.codes.append(e.code())
    out.exit_code = serve.proc.wait(timeout=30)
    return out


@rounds
def test_sigterm_drains_every_call_in_flight_and_exits_zero(
    client: redis.Redis, redis_url: str, chaos_round: int
) -> None:
    snapshot(client, "v1", [(u, r, "click", 2) for u in USERS for r in ("r1", "r2")])
    serve = ServeProcess(redis_url, "--drain-s", str(DRAIN_S), "--grace-s", "20").start()
    try:
        drain = sigterm_under_load(serve)
    finally:
        serve.stop()
    print(f"drain: {drain}")
    assert drain.in_flight_at_signal >= 10, "the calls were in flight when the signal came"
    assert drain.codes == [grpc.StatusCode.OK] * 20
    assert drain.not_serving_at is not None and drain.refused_at is not None
    assert drain.served_while_draining, "NOT_SERVING while still answering"
    assert drain.refused_at - drain.not_serving_at >= 0.8 * DRAIN_S
    assert drain.exit_code == 0
