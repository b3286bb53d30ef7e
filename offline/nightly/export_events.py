"""``debunk export-events``: drain the service's event stream into Parquet for the offline side.

Each chunk starts right after the exported cursor and is written under a name made from its first
stream id, aside and renamed; the cursor moves only after the files are in place. A drain killed
at any point is re-run from the same cursor and rewrites the same files (a superset, never a
duplicate), so nothing is lost or exported twice.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import redis

from feature_store import events
from offline.io.contracts import EVENT_SCHEMA as DEBUNK_EVENT_SCHEMA
from offline.io.parquet import write_parquet_atomic

# The debunk-events contract plus the stream id each event had in Redis.
EVENT_SCHEMA = DEBUNK_EVENT_SCHEMA.append(pa.field("stream_id", pa.string()))


def _table(rows: list[tuple[str, dict[str, str]]]) -> pa.Table:
    cols: dict[str, list[Any]] = {f.name: [] for f in EVENT_SCHEMA}
    for stream_id, fields in rows:
        for name in events.FIELDS:
            value: Any = fields.get(name, "")
            if name == "ts":
                value = datetime.fromtimestamp(int(value or 0), UTC)
            cols[name].append(value)
        cols["stream_id"].append(stream_id)
    return pa.table(cols, schema=EVENT_SCHEMA)


def _write_chunk(out: Path, table: pa.Table, first_id: str) -> list[Path]:
    """One file per UTC day of the chunk, named after the chunk's first stream id."""
    days = pc.strftime(table["ts"], format="%Y-%m-%d")
    written = []
    for day in sorted(set(days.to_pylist())):
        part = table.filter(pc.equal(days, day))
        path = out / f"dt={day}" / f"events-{first_id.replace('-', '_')}.parquet"
        written.append(write_parquet_atomic(part, path))
    return written


def export_events(client: redis.Redis, out: Path, *, chunk: int = 100_000) -> dict[str, Any]:
    """Drain every event after the cursor into ``out/dt=YYYY-MM-DD/``; returns a summary."""
    started = time.perf_counter()
    cursor = events.exported_cursor(client)
    summary: dict[str, Any] = {"from_cursor": cursor, "events": 0, "files": 0, "lost_warning": ""}
    oldest = events.oldest_id(client)
    if cursor != "0-0" and oldest and events.id_before(events._next_id(cursor), oldest):
        summary["lost_warning"] = (
            f"the stream was trimmed past the export cursor ({cursor} < oldest {oldest}): "
            "events between them were lost; run export-events more often"
        )
    while True:
        rows = events.read_after(client, cursor, chunk)
        if not rows:
            break
        summary["files"] += len(_write_chunk(out, _table(rows), rows[0][0]))
        cursor = rows[-1][0]
        events.advance(client, cursor)
        summary["events"] += len(rows)
    summary["to_cursor"] = cursor
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary
