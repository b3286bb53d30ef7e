"""Follows the snapshot pointer: notices a flip within a poll interval and loads its catalog, and
notices when the pinned snapshot is gone (Redis restarted empty, or rolled back) or Redis stops
answering, so answers are flagged degraded and health turns NOT_SERVING until it is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import redis

from feature_store.reader import SnapshotReader
from service.live_catalog import LiveCatalog

log = logging.getLogger("debunk.service.snapshots")
POLL_ERRORS = (TimeoutError, redis.RedisError, OSError)
# The least time between two polls, however often failing calls ask for one.
MIN_POLL_GAP_S = 0.02
SUSPECT_POLL_S = 0.1  # the poll interval while the pinned snapshot is not trusted
# The poll interval once a live catalog layer exists: a withdrawal is served within a second.
LIVE_POLL_S = 0.2


class SnapshotWatcher:
    """Holds the version requests pin; switches only once the new version's catalog is loaded.

    Each poll is one round trip: the pointer, and whether the pinned version's meta key still
    exists. ``trusted`` is False while the pinned snapshot is known gone, or while a lost
    connection (``suspect``) has not yet been followed by a poll that found it in place: the
    Redis behind a lost connection may have come back empty. ``serving`` (what health says)
    also needs a poll answered within the last ``unreachable_s`` seconds.
    """

    def __init__(
        self,
        reader: SnapshotReader,
        *,
        poll_interval: float,
        on_ready: Callable[[str], None] | None = None,
        prepare: Callable[[str], Awaitable[None]] | None = None,
        on_serving: Callable[[bool], None] | None = None,
        unreachable_s: float = 2.0,
        poll_timeout: float = 1.0,
        live: LiveCatalog | None = None,
    ) -> None:
        self.reader = reader
        self.poll_interval = poll_interval
        self.unreachable_s = unreachable_s
        self.poll_timeout = poll_timeout
        self.version: str | None = None
        self.gone = False  # the pinned version's keys are missing from Redis
        self.unverified = False  # a connection was lost since the last poll that found them
        self.serving = False
        self._suspected_at = -float("inf")
        self._answered_at = -float("inf")
        self._on_ready = on_ready
        self._prepare = prepare
        self._on_serving = on_serving
        self.live = live
        self.live_seq: int | None = None  # the live layer's seq the last poll saw
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def trusted(self) -> bool:
        """Whether answers read from the pinned version can be given as whole (not degraded)."""
        return not (self.gone or self.unverified)

    def suspect(self) -> None:
        """A store connection was lost: until a poll finds the pinned snapshot again, answers
        are flagged degraded (the server may be a new, empty one). Polls at once."""
        if self.version is None:
            return
        self.unverified = True
        self._suspected_at = time.monotonic()
        self._kick.set()

    async def refresh(self) -> str | None:
        """Poll once; adopt a new version after its catalog has loaded, and note whether the
        pinned one is still there."""
        started = time.monotonic()
        async with asyncio.timeout(self.poll_timeout):
            latest, pinned_there, seq = await self.reader.poll(self.version)
        self._answered_at = time.monotonic()
        self.live_seq = seq
        adopted = False
        if latest and latest != self.version and await self.reader.version_exists(latest):
            await self.reader.catalog(latest)
            if self._prepare:
                await self._prepare(latest)  # e.g. the matcher index: built before adoption
            if self.live is not None:
                await self.live.adopt(latest, seq or 0)  # merged before the first answer
            previous, self.version = self.version, latest
            pinned_there = adopted = True
            log.info("snapshot adopted", extra={"version": latest, "previous": previous})
            if self._on_ready:
                self._on_ready(latest)
        if self.version is not None:
            if pinned_there == self.gone and not adopted:
                log.warning(
                    "pinned snapshot %s %s",
                    self.version,
                    "is back" if pinned_there else "is gone: answers are degraded",
                )
            self.gone = not pinned_there
            if self._suspected_at <= started:
                self.unverified = False
            if self.live is not None and not adopted and (seq or 0) != self.live.seq:
                await self.live.load(self.version)  # False: the next poll adopts the newer
        return self.version

    def _update_serving(self) -> None:
        answered = time.monotonic() - self._answered_at <= self.unreachable_s
        serving = self.version is not None and not self.gone and answered
        if serving != self.serving:
            self.serving = serving
            log.warning("health %s", "SERVING" if serving else "NOT_SERVING")
            if self._on_serving:
                self._on_serving(serving)

    async def _run(self) -> None:
        while True:
            self._kick.clear()
            try:
                await self.refresh()
            except POLL_ERRORS as e:
                log.warning("snapshot poll failed; keeping %s: %s", self.version, e)
            self._update_serving()
            await asyncio.sleep(MIN_POLL_GAP_S)  # failing calls kick it: not a busy loop
            # While answers are not trusted (a connection lost, the pin gone), poll again soon:
            # health and answers follow the store within a fraction of a second.
            wait = self.poll_interval if self.trusted else min(self.poll_interval, SUSPECT_POLL_S)
            if self.live_seq is not None:
                wait = min(wait, LIVE_POLL_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=wait)

    def start(self) -> None:
        """Poll in the background until ``stop``."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
