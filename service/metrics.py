"""Prometheus metrics on their own HTTP port: per-RPC latency, errors, degraded answers and the
snapshot version. Labels are method names and status codes only, never user ids."""

from __future__ import annotations

import asyncio
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from service.decoding import RateLimitedLog, decode

# Answers that carry the experiment and arm of their viewer, or one per user (batch).
VIEWER_LABELLED = frozenset({"RankFeed", "SearchTop", "CommentTop"})
BATCH_LABELLED = frozenset({"RankFeedBatch"})
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """One registry per server, so several servers (tests, workers) never collide."""

    def __init__(self) -> None:
        # Calls being handled and when the last one started (the drain waits for both to settle).
        self.active = 0
        self.last_started = 0.0
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "debunk_rpc_latency_seconds", "Server-side latency of each RPC.", ["method"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "debunk_rpc_errors_total", "RPCs that ended with a non-OK status.", ["method", "code"],
            registry=self.registry,
        )  # fmt: skip
        self.degraded = Counter(
            "debunk_degraded_total", "Answers flagged degraded because the store failed.",
            ["method"], registry=self.registry,
        )  # fmt: skip
        self.in_flight = Gauge(
            "debunk_rpc_in_flight", "RPCs being handled right now.", ["method"],
            registry=self.registry,
        )  # fmt: skip
        self.snapshot = Gauge(
            "debunk_snapshot_info", "1 for the snapshot version being served.", ["version"],
            registry=self.registry,
        )  # fmt: skip
        self.assignments = Counter(
            "debunk_feed_assignments_total",
            "Feed answers per experiment arm (compare with the configured shares: SRM).",
            ["experiment", "arm"], registry=self.registry,
        )  # fmt: skip
        self._version: str | None = None
        self._http: Any = None

    def set_snapshot(self, version: str) -> None:
        if self._version is not None:
            self.snapshot.remove(self._version)
        self.snapshot.labels(version=version).set(1)
        self._version = version

    def count_assignments(self, reply: Any) -> None:
        """Count the experiment arm of a single-viewer answer (RankFeed, SearchTop, ...)."""
        if reply.experiment:
            self.assignments.labels(reply.experiment, reply.arm).inc()

    def count_batch_assignments(self, reply: Any) -> None:
        """Count the experiment arms of a batch answer (one per user): a ``BatchReply``'s, or a
        message's."""
        if hasattr(reply, "arm_counts"):
            arms = reply.arm_counts()
        else:
            arms = Tally((f.experiment, f.arm) for f in reply.feeds if f.experiment)
        for (experiment, arm), n in arms.items():
            self.assignments.labels(experiment, arm).inc(n)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Expose /metrics on ``port`` (0: any free port); returns the port."""
        self._http, _ = start_http_server(port, addr=host, registry=self.registry)
        return self._http.server_port

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Times every unary RPC and counts its non-OK endings. The timed handler of each method is
    built once and reused while the server returns the same inner handler. It also decodes the
    request body itself (``service.decoding``), so a bad body is INVALID_ARGUMENT and counted,
    and names a call the client cancelled CANCELLED."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.bad_bodies = RateLimitedLog()
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        cached = self._wrapped.get(details.method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._timed(details.method.rsplit("/", 1)[-1], handler)
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped

    def _timed(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        inner = handler.unary_unary
        parse = handler.request_deserializer
        bad_bodies = self.bad_bodies
        metrics = self.metrics
        latency = metrics.latency.labels(method)
        in_flight = metrics.in_flight.labels(method)
        degraded = metrics.degraded.labels(method)
        count = (
            metrics.count_batch_assignments if method in BATCH_LABELLED
            else metrics.count_assignments if method in VIEWER_LABELLED
            else None
        )  # fmt: skip

        async def timed(body: bytes, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            in_flight.inc()
            metrics.active += 1
            metrics.last_started = started
            try:
                request = await decode(method, parse, body, context, bad_bodies)
                reply = await inner(request, context)
            except asyncio.CancelledError:
                metrics.errors.labels(method, "CANCELLED").inc()
                raise
            except BaseException:
                code = context.code() or grpc.StatusCode.UNKNOWN
                metrics.errors.labels(method, _name(code)).inc()
                raise
            finally:
                in_flight.dec()
                metrics.active -= 1
                latency.observe(time.perf_counter() - started)
            if getattr(reply, "degraded", False):
                degraded.inc()
            if count is not None:
                count(reply)
            return reply

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=None,  # raw bytes: ``decode`` parses them
            response_serializer=handler.response_serializer,
        )


def _name(code: Any) -> str:
    return code.name if isinstance(code, grpc.StatusCode) else str(code)
