"""Which feed users the service may answer without a store read: outside the pinned snapshot's
member filter and outside the live layer's announced users (feature_store.members).

The snapshot's filter is loaded with its catalog, before the version is adopted, and kept per
version, so a call pinned to one version never asks another version's filter. The announced
users are one process-wide set read from ``keys.LIVE_MEMBERS``: from the pinned snapshot's
start id (``members.start_id``) on, then every ``POLL_S`` after the last entry read, in a task
of its own (a flip's matcher build, which holds the snapshot watcher for seconds, never holds
it). A user is a non-member of a version only when that version's filter says so, the set was
read from no later than that version's start, and the set does not hold the user; anything
else (no filter, a rollback to an older start, the set not read yet) is a member: read from
the store as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from domain.membership import MemberFilter
from feature_store import members
from feature_store.reader import SnapshotReader
from service.snapshot_watcher import POLL_ERRORS, SnapshotWatcher

log = logging.getLogger("debunk.service.members")
POLL_S = 0.2  # live users become members within this (plus a round trip) in every worker
# A non-member's answer is flagged degraded when the announced users were last read longer ago
# than this: what Redis would have said (a failed read is degraded) when it stops answering.
STALE_S = 1.0
READ_TIMEOUT_S = 1.0  # as the snapshot watcher's poll: a hung Redis fails the read, not the loop


class Membership:
    """The member test of RankFeed and RankFeedBatch, and the task that keeps it current."""

    def __init__(self, reader: SnapshotReader, watcher: SnapshotWatcher) -> None:
        self.reader = reader
        self.watcher = watcher
        self.live: set[str] = set()
        self.start: bytes | None = None  # the first stream id ``live`` was read from
        self.position: bytes = b"0-0"  # where the next read starts
        self.read_at = -float("inf")  # monotonic time of the last complete read
        self._task: asyncio.Task[None] | None = None
        # (the filter entry, the set's start, the verdict) of the last _vouches decision
        self._vouch: tuple[object, bytes, MemberFilter | None] | None = None

    def _vouches(self, version: str) -> MemberFilter | None:
        """``version``'s filter when a non-member test against it can be trusted, else None
        (decided once per filter and set start, not per call)."""
        found = self.reader.member_filter(version)
        if found is None or self.start is None:
            return None
        hit = self._vouch
        if hit is not None and hit[0] is found and hit[1] is self.start:
            return hit[2]
        flt, start = found
        vouched = flt if _id_key(self.start) <= _id_key(start) else None
        self._vouch = (found, self.start, vouched)
        return vouched

    def member(self, version: str, user_id: str) -> bool:
        """Whether ``user_id`` may have cards in ``version`` (True whenever unsure)."""
        flt = self._vouches(version)
        return flt is None or user_id in self.live or user_id in flt

    def members_of(self, version: str, user_ids: list[str]) -> list[bool]:
        """``member`` for each of ``user_ids`` (the filter asked in one vectorised pass)."""
        flt = self._vouches(version)
        if flt is None:
            return [True] * len(user_ids)
        live = self.live
        return [i or u in live for u, i in zip(user_ids, flt.contains_many(user_ids), strict=True)]

    def live_rows(self, version: str) -> Callable[[str], bool] | None:
        """The test of who may have live rows in ``version`` (the announced users), when it
        can be trusted: the set read from no later than the version's start, and not stale;
        else None (every user's live keys are read). A user announced elsewhere since the last
        read is missed for up to POLL_S, as a non-member is."""
        if self._vouches(version) is None or self.stale():
            return None
        return self.live.__contains__

    def stale(self) -> bool:
        """Whether the announced users were last read more than STALE_S ago."""
        return time.monotonic() - self.read_at > STALE_S

    def add(self, user_ids: Iterable[str]) -> None:
        """Users this process just gave live rows (RecordExposures): members at once here."""
        self.live.update(user_ids)

    async def refresh(self) -> None:
        """Read the stream on from ``position``; first from the pinned snapshot's start when
        the set was read from another (a new snapshot, a rollback), into a fresh set."""
        version = self.watcher.version
        found = self.reader.member_filter(version) if version else None
        if found is None:
            return
        start = found[1]
        if start != self.start:
            live, position = await self._read_all(set(), start)
            self.live, self.start, self.position = live, start, position
        else:
            self.live, self.position = await self._read_all(self.live, self.position)
        self.read_at = time.monotonic()

    async def _read_all(self, into: set[str], position: bytes) -> tuple[set[str], bytes]:
        """Every entry from ``position`` to the stream's end, added to ``into``; over the
        redis-py client (as the experiment polls), not the feed reads' connections, so this
        background read never queues on them while Redis hangs."""
        client = self.reader.client
        while True:
            async with asyncio.timeout(READ_TIMEOUT_S):
                reply = await client.execute_command(*members.read_command(position))
            last, users = members.parse_entries(reply)
            into.update(users)
            if last is not None:
                position = b"(" + last
            if last is None or len(reply) < members.READ_COUNT:
                return into, position

    async def _run(self) -> None:
        """Refresh every POLL_S; a failed read leaves the set as it was (and ages it)."""
        while True:
            wait = POLL_S
            try:
                await self.refresh()
            except POLL_ERRORS as e:
                log.warning("live member read failed: %s", e)
                wait = STALE_S  # Redis not answering: no pile of reads behind a hang
            await asyncio.sleep(wait)

    def start_polling(self) -> None:
        """Read in the background until ``stop``."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """End the background reads."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _id_key(position: bytes) -> tuple[int, int]:
    """A stream position (``ms-seq``, maybe after ``(``) as a comparable pair."""
    ms, _, seq = position.lstrip(b"(").partition(b"-")
    return int(ms), int(seq or 0)
