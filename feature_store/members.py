"""Who may have a card: the snapshot's member filter and the live layer's announced users.

A snapshot's filter (``keys.members(version)``, domain.membership) holds every user with an
exposure or prebunk row in it; the nightly writes it before the flip. Users given rows above
the snapshot later (a tag's backfill into ``dbk:lx``, live ingest into ``dbk:li``) are
*announced* on ``keys.LIVE_MEMBERS`` before their rows are written: a user whose live rows
exist was announced first, so a reader that has read the stream up to now misses nobody (a
write that fails after its announcement only leaves a harmless false positive). The service
reads the stream from a little before its snapshot's cut, then incrementally in its snapshot
poll (service.membership).

Which entries can matter for a snapshot: a backfill entry stamped before the snapshot's
``tags_as_of`` is superseded by it (domain.exposure_layers), and an ingest entry written before
``live_after`` − 300 s holds no row at or after the watermark (rows from more than 300 s in the
future are refused). So a reader starts at the earlier of the two, less ``START_MARGIN_S`` for
clocks that disagree; earlier entries can only name users the snapshot already covers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import redis
import redis.asyncio

from domain.membership import MemberFilter
from feature_store import keys

USERS_PER_ENTRY = 10_000
# Clock skew between the nightly's host, the ingest's and Redis, and the 300 s a live row may
# lie in the future: entries this much before a snapshot's cut are read too.
START_MARGIN_S = 3_600 + 300
# Entries are kept this much past the rows' TTL (the lookback window) before MINID trims them.
TRIM_MARGIN_S = 86_400
READ_COUNT = 1_000


def announce_commands(user_ids: Iterable[str], ttl_s: int, now: float) -> list[tuple[Any, ...]]:
    """XADDs naming ``user_ids`` (checked ids, repeats dropped), at most USERS_PER_ENTRY an
    entry, each trimming entries older than the rows' TTL (plus a day) by MINID; names as str
    (redis-py picks its parsing, and a cluster its node, by them)."""
    users = sorted({keys.check_id(u, "user_id") for u in user_ids})
    floor = max(0, int((now - ttl_s - TRIM_MARGIN_S) * 1000))
    return [
        ("XADD", keys.LIVE_MEMBERS, "MINID", "~", str(floor), "*", "u",
         ",".join(users[lo : lo + USERS_PER_ENTRY]))
        for lo in range(0, len(users), USERS_PER_ENTRY)
    ]  # fmt: skip


def announce(client: redis.Redis, user_ids: Iterable[str], ttl_s: int) -> None:
    """Announce ``user_ids`` before their live rows are written (sync clients; raises when
    Redis did not take it, so the caller writes no rows)."""
    commands = announce_commands(user_ids, ttl_s, time.time())
    if commands:
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        pipe.execute()


async def announce_async(client: redis.asyncio.Redis, user_ids: Iterable[str], ttl_s: int) -> None:
    """``announce`` for an asyncio client (RecordExposures)."""
    commands = announce_commands(user_ids, ttl_s, time.time())
    if commands:
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        await pipe.execute()


def start_id(live_after_s: int | None, tags_as_of_ms: int) -> bytes:
    """The first stream id a reader of a snapshot with these stamps needs (inclusive)."""
    cuts = [t for t in (live_after_s, tags_as_of_ms // 1000 if tags_as_of_ms else None) if t]
    if len(cuts) < 2:
        return b"0-0"  # a snapshot without both stamps: every entry may matter
    return b"%d-0" % max(0, (min(cuts) - START_MARGIN_S) * 1000)


def read_command(position: bytes, count: int = READ_COUNT) -> tuple[Any, ...]:
    """XRANGE from ``position`` (an inclusive id, or ``(id`` for after it); the name as str,
    so redis-py parses the reply as a stream's."""
    return ("XRANGE", keys.LIVE_MEMBERS, position, b"+", b"COUNT", str(count).encode())


def parse_entries(reply: Sequence[Any] | None) -> tuple[bytes | None, set[str]]:
    """The last entry id of an XRANGE reply (None: no entry) and every user its entries name;
    raw RESP replies (``[id, [field, value]]``) and redis-py's (``(id, {field: value})``)."""
    users: set[str] = set()
    last = None
    for entry_id, fields in reply or ():
        last = entry_id if isinstance(entry_id, bytes) else str(entry_id).encode()
        if isinstance(fields, dict):
            value = fields.get(b"u", b"")
        else:
            pairs = dict(zip(fields[::2], fields[1::2], strict=True))
            value = pairs.get(b"u", b"")
        if value:
            users.update(value.decode().split(","))
    return last, users


def decode_filter(raw: bytes | None) -> MemberFilter | None:
    """A snapshot's member filter from its stored bytes (None: absent or unreadable, so every
    user counts as a member and is read from the store as before)."""
    if not raw:
        return None
    try:
        return MemberFilter.from_bytes(raw)
    except ValueError:
        return None
