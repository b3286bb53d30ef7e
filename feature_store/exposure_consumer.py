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

import contextlib
import gc
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hiredis
import redis

from domain.exposure_days import MAX_LIVE_DAYS
from domain.exposure_screen import screen_columns
from domain.ids import check_id
from feature_store import keys
from feature_store.live_ingest import (
    APPLY_SCRIPT,
    TaggedItems,
    load_tagged,
    pointer_commands,
    script_args,
)
from feature_store.stream_batch import StreamBatch, from_entries

DAY_S = 86_400
MAX_BATCH = 10_000


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
        self._wait = True  # a read that finds nothing waits block_ms for more
        self._own_pending = True  # after a start, this consumer's pending entries come first
        self._ahead: tuple[StreamBatch, list[Any]] | None = None  # read with the last apply

    def ensure_group(self) -> None:
        """Create the group (reading from the stream's start) and the stream if missing."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def step(self, *, read_ahead: bool = True) -> int:
        """Read, screen and apply one batch; the number of entries it held (0: none came).
        With ``read_ahead``, the next batch is read in the apply's round trip (after it)."""
        with _collector_paused():
            return self._step(read_ahead)

    def _step(self, read_ahead: bool) -> int:
        """step, with the cyclic garbage collector off."""
        ahead, self._ahead = self._ahead, None
        batch, pointer = ahead if ahead and ahead[0].ids else (self._read(), None)
        if not batch.ids:
            return 0
        self.tagged = load_tagged(self.client, self.tagged, pointer)
        screened = screen_columns(batch.cols, self.tagged.by_bytes, now=time.time(),
                                  window_s=self.window_s, live_after=self.tagged.live_after,
                                  score_of=self.tagged.score_of)  # fmt: skip
        keys_, argv = script_args(screened, source="stream", ttl_s=self.window_s,
                                  stream=(self.stream, self.group, batch.ids))  # fmt: skip
        if read_ahead:
            self._ahead = self._apply_and_read(keys_, argv)
        else:
            self.script(keys=keys_, args=argv)
        s = self.summary
        s.batches, s.entries = s.batches + 1, s.entries + len(batch.ids)
        s.rows, s.stored = s.rows + batch.rows, s.stored + screened.stored
        s.untagged, s.covered = s.untagged + screened.untagged, s.covered + screened.covered
        s.rejected += len(screened.rejects)
        return len(batch.ids)

    def run(
        self, *, exit_when_idle: bool = False, max_batches: int | None = None
    ) -> ConsumerSummary:
        """Consume until killed (or, with ``exit_when_idle``, until a read finds nothing: then
        without the blocking read, which would only wait for more)."""
        started = time.perf_counter()
        self._wait = not exit_when_idle
        self.ensure_group()
        while max_batches is None or self.summary.batches < max_batches:
            last = max_batches is not None and self.summary.batches + 1 >= max_batches
            if not self.step(read_ahead=not last) and exit_when_idle:
                break
        self.summary.seconds = round(time.perf_counter() - started, 3)
        return self.summary

    def _apply_and_read(self, keys_: list[bytes], argv: list[Any]) -> tuple[StreamBatch, list]:
        """Apply a batch and read the next one in one round trip (one AOF fsync under
        ``always``): the script, then the snapshot pointer and live seq, then the reads. The
        reads come after the script, so what they return is never what it acknowledged."""
        reads = self._read_commands(block=False)
        commands = [(b"EVALSHA", self.script.sha, len(keys_), *keys_, *argv),
                    *pointer_commands(), *reads]  # fmt: skip
        replies = self._raw(*commands)
        applied, pointer = replies[0], replies[1:3]
        if isinstance(applied, redis.exceptions.NoScriptError):
            return self._applied_after_noscript(keys_, argv), pointer
        if isinstance(applied, Exception):
            raise applied
        return self._batch(reads, replies[3:]), pointer

    def _applied_after_noscript(self, keys_: list[bytes], argv: list[Any]) -> StreamBatch:
        """Load and run the script a flushed or restarted server lacked, and drop the reads'
        replies: they ran before the batch was acknowledged, so they may hold its entries again
        (its own pending list, a claim at a short idle). What they delivered is in this
        consumer's pending list, which the next read takes first."""
        self.script(keys=keys_, args=argv)
        self._own_pending = True
        return from_entries(None)

    def _read(self) -> StreamBatch:
        """The next batch: own pending entries, then stale ones of others and new ones, then,
        when none (and the run waits for more), new ones with a blocking read."""
        if self._own_pending:
            commands = self._read_commands(block=False)
            got = self._batch(commands, self._raw(*commands))
            if got.ids:
                return got
        commands = self._read_commands(block=False)
        got = self._batch(commands, self._raw(*commands))
        if got.ids or not self._wait:
            return got
        commands = self._read_commands(block=True)
        return self._batch(commands, self._raw(*commands))

    def _read_commands(self, *, block: bool) -> list[tuple[Any, ...]]:
        """The reads of the consumer's phase: its own pending list (b"0"), else entries idle
        longer than claim_idle_ms in others' (XAUTOCLAIM) and new ones (b">"), or, with
        ``block``, new ones waiting up to block_ms."""
        read = (b"XREADGROUP", b"GROUP", self.group, self.consumer, b"COUNT", self.batch)
        if self._own_pending:
            return [(*read, b"STREAMS", self.stream, b"0")]
        if block:
            return [(*read, b"BLOCK", self.block_ms, b"STREAMS", self.stream, b">")]
        claim = (b"XAUTOCLAIM", self.stream, self.group, self.consumer, self.claim_idle_ms,
                 b"0-0", b"COUNT", self.batch)  # fmt: skip
        return [claim, (*read, b"STREAMS", self.stream, b">")]

    def _batch(self, commands: list[tuple[Any, ...]], replies: list[Any]) -> StreamBatch:
        """One StreamBatch of the replies of _read_commands; an own pending list found empty
        ends that phase, entries trimmed away while pending are acknowledged (nothing to
        apply)."""
        entries: list[Any] = []
        for command, reply in zip(commands, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            if command[0] == b"XAUTOCLAIM":
                entries += reply[1]
            else:
                entries += _stream_entries(reply) or ()
        got = from_entries(entries)
        if self._own_pending and not got.ids and not got.gone:
            self._own_pending = False
        if got.gone:
            self.client.xack(self.stream, self.group, *got.gone)
        return got

    def _raw(self, *commands: tuple[Any, ...]) -> list[Any]:
        """The replies of ``commands``, sent in one write, as hiredis parsed them (nested lists
        of bytes, without the reply callback that builds a dict per stream entry in Python);
        an error reply is returned in its place, not raised."""
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([hiredis.pack_command(c) for c in commands])
            replies = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except redis.ResponseError as e:
                    replies.append(e)
            return replies
        except BaseException:
            conn.disconnect()  # a reply half read must not reach the next command
            raise
        finally:
            pool.release(conn)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for one batch: parsing a reply allocates two lists per
    entry, which would run a collection every few hundred entries (over the tagged-items set
    too), and a batch's objects hold no cycles (reference counting frees them)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _stream_entries(reply: Any) -> list[Any] | None:
    """The entry list of a one-stream XREADGROUP reply: RESP2 [[stream, entries]], RESP3
    {stream: entries}, nil when the read timed out."""
    if not reply:
        return None
    if isinstance(reply, dict):
        return next(iter(reply.values()))
    return reply[0][1]
