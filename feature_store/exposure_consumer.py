"""The Redis Stream consumer of live exposures (``debunk ingest``): at-least-once delivery
through a consumer group, exactly-once effect.

Each round reads up to ``batch`` entries (first this consumer's own pending ones, left by a
run that died; then entries idle longer than ``claim_idle_ms`` in another consumer's pending
list; then new ones, blocking), screens them with the tagged-items set (refreshed when the
snapshot pointer or the live seq moves) and applies them with one script that also XACKs them
(``feature_store.live_ingest``). The state and the acknowledgement are one atomic step, so an
entry redelivered after a kill was either applied and acknowledged, or neither: never counted
twice, never lost.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

import redis

from domain.exposure_days import MAX_LIVE_DAYS
from domain.exposure_screen import RawExposure, screen
from domain.ids import check_id
from feature_store import keys
from feature_store.live_ingest import APPLY_SCRIPT, TaggedItems, load_tagged, script_args

DAY_S = 86_400
MAX_BATCH = 10_000
_FIELDS = (b"user_id", b"item_id", b"ts", b"surface", b"action")


@dataclass
class ConsumerSummary:
    """What a run of the consumer did."""

    batches: int = 0
    entries: int = 0
    rows: int = 0
    stored: int = 0
    untagged: int = 0
    covered: int = 0
    rejected: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ExposureConsumer:
    """One consumer of a consumer group on an exposure stream."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        stream: bytes = keys.EXPOSURE_STREAM,
        group: str = "debunk-ingest",
        consumer: str | None = None,
        batch: int = 2_000,
        block_ms: int = 1_000,
        claim_idle_ms: int = 60_000,
        window_days: int = MAX_LIVE_DAYS,
    ) -> None:
        if not stream or any(c in stream for c in b" \t\r\n"):
            raise ValueError("the stream key must be non-empty, without whitespace")
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"batch must be 1 to {MAX_BATCH}, got {batch}")
        self.client, self.stream = client, stream
        self.group = check_id(group, "group")
        self.consumer = check_id(consumer or socket.gethostname(), "consumer")
        self.batch, self.block_ms, self.claim_idle_ms = batch, block_ms, claim_idle_ms
        self.window_s = window_days * DAY_S
        self.tagged = TaggedItems()
        self.script = client.register_script(APPLY_SCRIPT)
        self.summary = ConsumerSummary()
        self._own_pending = True  # after a start, this consumer's pending entries come first

    def ensure_group(self) -> None:
        """Create the group (reading from the stream's start) and the stream if missing."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def step(self) -> int:
        """Read, screen and apply one batch; the number of entries it held (0: none came)."""
        entries = self._read()
        if not entries:
            return 0
        self.tagged = load_tagged(self.client, self.tagged)
        rows = [row for _, fields in entries for row in _rows(fields)]
        screened = screen(rows, self.tagged.rumors, now=time.time(), window_s=self.window_s,
                          live_after=self.tagged.live_after)  # fmt: skip
        ids = [entry_id for entry_id, _ in entries]
        keys_, argv = script_args(screened, source="stream", ttl_s=self.window_s,
                                  stream=(self.stream, self.group, ids))  # fmt: skip
        self.script(keys=keys_, args=argv)
        s = self.summary
        s.batches, s.entries, s.stored = (
            s.batches + 1,
            s.entries + len(ids),
            s.stored + screened.stored,
        )
        s.untagged, s.covered = s.untagged + screened.untagged, s.covered + screened.covered
        s.rejected += len(screened.rejects)
        s.rows += len(rows)
        return len(ids)

    def run(
        self, *, exit_when_idle: bool = False, max_batches: int | None = None
    ) -> ConsumerSummary:
        """Consume until killed (or, with ``exit_when_idle``, until a read finds nothing)."""
        started = time.perf_counter()
        self.ensure_group()
        while max_batches is None or self.summary.batches < max_batches:
            if not self.step() and exit_when_idle:
                break
        self.summary.seconds = round(time.perf_counter() - started, 3)
        return self.summary

    def _read(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """The next batch: own pending entries, then stale ones of others, then new ones."""
        if self._own_pending:
            got = self._group_read(b"0", block=False)
            if got:
                return got
            self._own_pending = False
        claimed = self.client.xautoclaim(self.stream, self.group, self.consumer,
                                         self.claim_idle_ms, "0-0", count=self.batch)  # fmt: skip
        entries = [(i, f) for i, f in claimed[1] if f is not None]
        if entries:
            return entries
        return self._group_read(b">", block=True)

    def _group_read(self, start: bytes, *, block: bool) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """XREADGROUP from ``start`` (b"0": this consumer's pending list; b">": new entries)."""
        reply = self.client.xreadgroup(
            self.group, self.consumer, {self.stream: start},
            count=self.batch, block=self.block_ms if block else None,
        )  # fmt: skip
        if not reply:
            return []
        gone = [i for i, f in reply[0][1] if not f]  # trimmed away while pending: nothing to do
        if gone:
            self.client.xack(self.stream, self.group, *gone)
        return [(i, f) for i, f in reply[0][1] if f]


def _rows(fields: dict[bytes, bytes]) -> list[RawExposure]:
    """A stream entry as raw exposures: one row in five fields, or many in ``rows`` (one
    tab-separated line per row, the fields in that order); what is missing is empty (rejected)."""
    packed = fields.get(b"rows")
    if packed is None:
        user, item, ts, surface, action = (
            fields.get(f, b"").decode("utf-8", "replace") for f in _FIELDS
        )
        return [(user, item, ts or None, surface, action)]
    out: list[RawExposure] = []
    for line in packed.decode("utf-8", "replace").splitlines():
        p = (line.split("\t") + ["", "", "", "", ""])[:5]
        out.append((p[0], p[1], p[2] or None, p[3], p[4]))
    return out
