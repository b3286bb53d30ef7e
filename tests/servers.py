"""Real servers for tests: the gRPC service on loopback in a background event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from feature_store.connection import RedisSettings
from service.server import DebunkServer, ServerConfig


class ServiceThread:
    """A DebunkServer on 127.0.0.1 with an ephemeral port, its loop running in a thread."""

    def __init__(
        self, settings: RedisSettings, *, poll_interval: float = 0.05, **config: object
    ) -> None:
        self.config = ServerConfig(port=0, poll_interval=poll_interval, grace_s=1.0, **config)
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: DebunkServer | None = None
        self.port = 0

    def _call(self, coro):  # noqa: ANN001, ANN202
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def start(self) -> ServiceThread:
        self.thread.start()

        async def _start() -> int:
            self.server = DebunkServer(self.settings, self.config)
            return await self.server.start()

        self.port = self._call(_start())
        return self

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.server is not None:
            self._call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def wait_for_health(channel: grpc.Channel, want: int, timeout: float = 15.0) -> int:
    """Poll the health service until it reports ``want``; returns the last status seen."""
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    status = -1
    while time.monotonic() < deadline:
        try:
            status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1).status
        except grpc.RpcError:
            status = -1
        if status == want:
            return status
        time.sleep(0.02)
    return status
