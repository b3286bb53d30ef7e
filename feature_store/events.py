"""The debunk event stream: a bounded Redis Stream the service appends to and the offline side
drains into Parquet, with a cursor so that nothing is lost or exported twice."""

from __future__ import annotations

from typing import Any

import redis

from domain.delivery import DeliveryEvent
from feature_store import keys

# Approximate bound on the stream; export-events must run before this many events pile up.
STREAM_MAXLEN = 2_000_000
FIELDS = (
    "user_id", "debunk_id", "rumor_id", "surface", "event", "ts", "experiment", "arm", "event_id",
    "update",
)  # fmt: skip


def encode_fields(e: DeliveryEvent) -> dict[str, str]:
    """An event's stream fields; ``update`` as "1"/"0" (entries written before it have none)."""
    return {f: ("1" if e.update else "0") if f == "update" else str(getattr(e, f)) for f in FIELDS}


def decode_update(value: str) -> bool:
    """A stream entry's ``update`` field (absent in older entries: a first delivery)."""
    return value == "1"


def queue_append(pipe: Any, events: list[DeliveryEvent], maxlen: int = STREAM_MAXLEN) -> None:
    """Queue one XADD per event on a (sync or async) pipeline."""
    for e in events:
        pipe.xadd(keys.EVENTS, encode_fields(e), maxlen=maxlen, approximate=True)


def exported_cursor(client: redis.Redis) -> str:
    """The id of the last event already exported ("0-0" before the first export)."""
    raw = client.get(keys.EVENTS_EXPORTED)
    return raw.decode() if raw else "0-0"


def read_after(client: redis.Redis, cursor: str, count: int) -> list[tuple[str, dict[str, str]]]:
    """Up to ``count`` events strictly after ``cursor``, oldest first."""
    rows = client.xrange(keys.EVENTS, min=f"({cursor}", max="+", count=count)
    return [(i.decode(), {k.decode(): v.decode() for k, v in f.items()}) for i, f in rows]


def oldest_id(client: redis.Redis) -> str | None:
    """The id of the oldest event still in the stream."""
    rows = client.xrange(keys.EVENTS, count=1)
    return rows[0][0].decode() if rows else None


def advance(client: redis.Redis, cursor: str) -> None:
    """Record that everything up to ``cursor`` is exported, and drop it from the stream."""
    client.set(keys.EVENTS_EXPORTED, cursor)
    client.xtrim(keys.EVENTS, minid=_next_id(cursor), approximate=False)


def _next_id(stream_id: str) -> str:
    ms, seq = stream_id.split("-")
    return f"{ms}-{int(seq) + 1}"


def id_before(a: str, b: str) -> bool:
    """Whether stream id ``a`` comes before ``b``."""
    return tuple(map(int, a.split("-"))) < tuple(map(int, b.split("-")))
