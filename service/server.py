"""The grpc.aio server: DebunkService, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from debunk.v1 import debunk_pb2 as pb
from feature_store.connection import RedisSettings
from feature_store.durability import warn_unless_durable
from feature_store.reader import SnapshotReader
from feature_store.row_cache import SnapshotRows
from feature_store.transport.factory import open_transport
from service import collector
from service.batch_reply import add_to_server
from service.collector import STEP_SHARE, FreezeOnGrowth
from service.config import ServerConfig
from service.experiments import ExperimentBook
from service.library import LibraryMatchers
from service.live_catalog import LiveCatalog
from service.membership import Membership
from service.metrics import Metrics, MetricsInterceptor
from service.offload import CpuPool
from service.servicer import DebunkServicer
from service.snapshot_watcher import SnapshotWatcher

log = logging.getLogger("debunk.service")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DebunkService"].full_name


class DebunkServer:
    """One server process: start it, wait on it, stop it gracefully (in-flight calls drain)."""

    def __init__(self, settings: RedisSettings, config: ServerConfig) -> None:
        self.settings = settings
        self.config = config
        self.port: int | None = None
        self._transport = open_transport(settings)  # chosen once: RESP lanes, or redis-py
        self._redis = self._transport.client
        rows = SnapshotRows(config.row_cache_users) if config.row_cache_users > 0 else None
        self._reader = SnapshotReader(self._transport, rows=rows)
        # While the kept rows fill, the heap is frozen at each tenth: no full pass walks them.
        self._freezer = (
            None if rows is None
            else FreezeOnGrowth(rows.__len__, int(config.row_cache_users * STEP_SHARE))
        )  # fmt: skip
        self._cpu = CpuPool(config.cpu_threads)
        self._health = health.aio.HealthServicer()
        self._health_lock = asyncio.Lock()
        self._matchers = LibraryMatchers(self._reader)
        self._live = LiveCatalog(self._reader, self._matchers)
        self._experiments = ExperimentBook(self._redis, poll_interval=config.poll_interval)
        self._watcher = SnapshotWatcher(
            self._reader,
            poll_interval=config.poll_interval,
            on_ready=self._on_snapshot,
            prepare=self._matchers.prepare,
            on_serving=self._on_serving,
            unreachable_s=config.unreachable_s,
            live=self._live,
        )
        self._membership = Membership(self._reader, self._watcher) if config.member_filter else None
        # A connection gone, even with no call on it: the next may reach an empty, restarted
        # Redis, so answers are degraded until a poll finds the pinned snapshot again.
        self._transport.on_connection_lost(self._watcher.suspect)
        options = [("grpc.so_reuseport", 1 if config.reuse_port else 0)]
        self.metrics = Metrics()
        self.metrics_port: int | None = None
        self._server = grpc.aio.server(
            options=options, interceptors=[MetricsInterceptor(self.metrics)]
        )

    def _on_snapshot(self, version: str) -> None:
        self.metrics.set_snapshot(version)
        # The catalog and matcher index just loaded are long-lived: move them out of the
        # collector's sight, so full collections stop walking them on the request path.
        gc.collect()
        gc.freeze()

    def _on_serving(self, serving: bool) -> None:
        """Health follows the watcher: SERVING while the pinned snapshot is there and Redis
        answers, NOT_SERVING otherwise (and for good once draining)."""
        status = health_pb2.HealthCheckResponse
        asyncio.get_running_loop().create_task(
            self._set_health(status.SERVING if serving else status.NOT_SERVING)
        )

    async def _set_health(self, status: int) -> None:
        async with self._health_lock:  # changes land in the order they were made
            for name in ("", SERVICE_NAME):
                await self._health.set(name, status)

    def _bind(self) -> int:
        address = f"{self.config.host}:{self.config.port}"
        if self.config.tls_cert and self.config.tls_key:
            creds = grpc.ssl_server_credentials(
                [(Path(self.config.tls_key).read_bytes(), Path(self.config.tls_cert).read_bytes())]
            )
            return self._server.add_secure_port(address, creds)
        return self._server.add_insecure_port(address)

    async def start(self) -> int:
        """Bind, start serving, and begin following the snapshot pointer; returns the port."""
        add_to_server(
            DebunkServicer(
                self._reader,
                self._watcher,
                self.config.policy,
                self._matchers,
                self._experiments,
                self._cpu,
                self._live,
                self._membership,
            ),
            self._server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self._server,
        )
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await warn_unless_durable(self._redis)  # logs when Redis cannot keep acked events
        self.port = self._bind()
        await self._server.start()
        collector.tune()
        self._watcher.start()
        if self._membership is not None:
            self._membership.start_polling()
        self._experiments.start()
        if self._freezer is not None:
            self._freezer.start()
        if self.config.metrics_port is not None:
            self.metrics_port = self.metrics.serve(self.config.metrics_port, self.config.host)
        log.info("serving", extra={"port": self.port})
        return self.port

    async def drain(self, hurry: asyncio.Event | None = None) -> None:
        """Health NOT_SERVING (for good) while calls are still answered, for ``drain_s`` or
        until ``hurry`` is set (a second signal): clients and load balancers that watch health
        move away before the listener closes, instead of finding it refusing."""
        await asyncio.wait_for(self._health.enter_graceful_shutdown(), timeout=5.0)
        log.info("draining", extra={"drain_s": self.config.drain_s})
        if self.config.drain_s <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for((hurry or asyncio.Event()).wait(), timeout=self.config.drain_s)

    async def stop(self) -> None:
        """Refuse new calls, let in-flight ones finish within the grace period, close Redis.

        Every step is bounded, so a stuck dependency cannot keep the process from exiting.
        """
        steps = (
            ("health", self._health.enter_graceful_shutdown(), 5.0),
            ("settle", self._settle(), self.config.grace_s),
            ("grpc", self._server.stop(self.config.grace_s), self.config.grace_s + 5.0),
            ("watcher", self._watcher.stop(), 5.0),
            ("live", self._live.stop(), 5.0),
            ("members", self._membership.stop() if self._membership else _nothing(), 5.0),
            ("experiments", self._experiments.stop(), 5.0),
            ("collector", self._freezer.stop() if self._freezer else _nothing(), 5.0),
            ("redis", self._close_redis(), 5.0),
        )
        for name, step, limit in steps:
            try:
                await asyncio.wait_for(step, timeout=limit)
            except TimeoutError:
                log.warning("shutdown step %s took longer than %.0fs; going on", name, limit)
        self.metrics.close()
        await asyncio.to_thread(self._cpu.close)
        log.info("stopped")

    async def _settle(self, quiet_s: float = 0.2) -> None:
        """Wait until no call is being handled and none has started for ``quiet_s``: grpc's
        stop cancels calls the transport holds but a busy loop has not started, so those get
        their turn first (bounded by the grace period in ``stop``)."""
        while self.metrics.active or time.perf_counter() - self.metrics.last_started < quiet_s:
            await asyncio.sleep(0.02)

    async def _close_redis(self) -> None:
        await self._transport.aclose()

    async def wait(self) -> None:
        await self._server.wait_for_termination()


async def _nothing() -> None:
    """A shutdown step with nothing to do."""


async def run_until_signalled(
    settings: RedisSettings, config: ServerConfig, on_signal: Callable[[], None] | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then drain (``drain_s``; a second signal cuts it short)
    and shut down gracefully. ``on_signal`` runs at the first signal (e.g. to pass it on to
    worker processes, so they drain at the same time)."""
    server = DebunkServer(settings, config)
    port = await server.start()
    metrics = f", metrics on :{server.metrics_port}/metrics" if server.metrics_port else ""
    print(f"debunk service listening on {config.host}:{port}{metrics}", flush=True)
    signals = 0
    stop, hurry = asyncio.Event(), asyncio.Event()

    def signalled() -> None:
        nonlocal signals
        signals += 1
        (hurry if stop.is_set() else stop).set()
        if signals == 1 and on_signal is not None:
            on_signal()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, signalled)
    await stop.wait()
    await server.drain(hurry)
    await server.stop()
