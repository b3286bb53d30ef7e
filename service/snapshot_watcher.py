"""Follows the snapshot pointer: notices a flip within a poll interval and loads its catalog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis

from feature_store.reader import SnapshotReader

log = logging.getLogger("debunk.service.snapshots")


class SnapshotWatcher:
    """Holds the version requests pin; switches only once the new version's catalog is loaded."""

    def __init__(
        self,
        reader: SnapshotReader,
        *,
        poll_interval: float,
        on_ready: Callable[[str], None] | None = None,
        prepare: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.reader = reader
        self.poll_interval = poll_interval
        self.version: str | None = None
        self._on_ready = on_ready
        self._prepare = prepare
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> str | None:
        """Read the pointer once; adopt a new version after its catalog has loaded."""
        latest = await self.reader.current_version()
        if latest and latest != self.version:
            await self.reader.catalog(latest)
            if self._prepare:
                await self._prepare(latest)  # e.g. the matcher index: built before adoption
            previous, self.version = self.version, latest
            log.info("snapshot adopted", extra={"version": latest, "previous": previous})
            if self._on_ready:
                self._on_ready(latest)
        return self.version

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (TimeoutError, redis.RedisError, OSError) as e:
                log.warning("snapshot poll failed; keeping %s: %s", self.version, e)
            await asyncio.sleep(self.poll_interval)

    def start(self) -> None:
        """Poll in the background until ``stop``."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
