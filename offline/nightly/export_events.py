"""``debunk export-events``: drain the service's event stream into Parquet for the offline side.

Each chunk starts right after the exported cursor and is written under a name made from its first
stream id, aside and renamed; the cursor moves only after the files are in place. A drain killed
at any point is re-run from the same cursor and rewrites the same files (a superset, never a
duplicate), so nothing is lost or exported twice.

Export never destroys: a file is only ever rewritten with the union of its rows and the new ones,
and the output folder keeps its own ledger of the last exported id (``_export_cursor.json``,
written after Redis acknowledged the cursor). A store whose cursor is behind that ledger lost
acknowledged writes (restored from an older dump, or restarted empty): the export stops, writes
nothing, and says how to go on.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import redis

from feature_store import events
from offline.io import ledger
from offline.io.contracts import EVENT_SCHEMA as DEBUNK_EVENT_SCHEMA
from offline.io.contracts import EVENT_UPDATE
from offline.io.parquet import write_parquet_atomic

# The debunk-events contract with its optional ``update`` column, plus the stream id each event
# had in Redis, and the caller's event id (empty for events recorded without one).
EVENT_SCHEMA = (
    DEBUNK_EVENT_SCHEMA.append(pa.field("stream_id", pa.string()))
    .append(pa.field("event_id", pa.string()))
    .append(EVENT_UPDATE)
)
LEDGER = "_export_cursor.json"


class ExportError(RuntimeError):
    """The export cannot go on without losing or rewriting exported events; nothing was written."""


def read_ledger(out: Path) -> str | None:
    """The last stream id this folder holds, as recorded after the store acknowledged it."""
    return ledger.read_ledger(out, LEDGER, ExportError)


def _write_ledger(out: Path, cursor: str) -> None:
    """Record ``cursor`` in the folder's ledger, atomically."""
    ledger.write_ledger(out, LEDGER, cursor)


def _check_not_rolled_back(cursor: str, ledger: str | None, out: Path) -> None:
    if ledger is None or not events.id_before(cursor, ledger):
        return
    raise ExportError(
        f"the store's export cursor {cursor} is behind {ledger}, the last event already exported "
        f"to {out}: Redis lost acknowledged writes (restored from an older dump, or restarted "
        "empty). Nothing was written and no exported row was touched. If the store's state is "
        f"what you expect now, run `debunk export-events --out {out} --resume-from-ledger` to "
        f"move its cursor to {ledger} and export what came after it."
    )


def _table(rows: list[tuple[str, dict[str, str]]], seen: set[str]) -> tuple[pa.Table, int]:
    """The rows as a table, without events whose id is in ``seen`` (ids are added to it): a
    retried RecordEvents past the id's TTL may have appended an event twice. Also how many
    were dropped."""
    cols: dict[str, list[Any]] = {f.name: [] for f in EVENT_SCHEMA}
    dropped = 0
    for stream_id, fields in rows:
        event_id = fields.get("event_id", "")
        if event_id:
            if event_id in seen:
                dropped += 1
                continue
            seen.add(event_id)
        for name in events.FIELDS:
            value: Any = fields.get(name, "")
            if name == "ts":
                value = datetime.fromtimestamp(int(value or 0), UTC)
            elif name == "update":
                value = events.decode_update(value)
            cols[name].append(value)
        cols["stream_id"].append(stream_id)
    return pa.table(cols, schema=EVENT_SCHEMA), dropped


def _write_chunk(out: Path, table: pa.Table, first_id: str) -> list[Path]:
    """One file per UTC day of the chunk, named after the chunk's first stream id."""
    days = pc.strftime(table["ts"], format="%Y-%m-%d")
    written = []
    for day in sorted(set(days.to_pylist())):
        part = table.filter(pc.equal(days, day))
        path = out / f"dt={day}" / f"events-{first_id.replace('-', '_')}.parquet"
        written.append(write_parquet_atomic(_with_existing(part, path), path))
    return written


def _with_update(table: pa.Table) -> pa.Table:
    """An exported table in EVENT_SCHEMA; a file written before ``update`` existed reads false."""
    if EVENT_UPDATE.name not in table.column_names:
        table = table.append_column(EVENT_UPDATE, pa.array([False] * table.num_rows, pa.bool_()))
    return table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)


def _with_existing(part: pa.Table, path: Path) -> pa.Table:
    """``part`` plus the rows an earlier (killed or rolled-back) drain left in ``path`` that
    ``part`` lacks, in stream order: a rewrite never has fewer rows than the file it replaces."""
    if not path.exists():
        return part
    try:
        old = _with_update(pq.read_table(path))
    except (OSError, pa.ArrowInvalid) as e:
        raise ExportError(f"{path}: cannot read the exported file to extend it ({e})") from None
    missing = old.filter(pc.invert(pc.is_in(old["stream_id"], value_set=part["stream_id"])))
    if not missing.num_rows:
        return part
    merged = pa.concat_tables([part, missing])
    ids = [tuple(map(int, s.split("-"))) for s in merged["stream_id"].to_pylist()]
    return merged.take(sorted(range(len(ids)), key=ids.__getitem__))


def export_events(
    client: redis.Redis, out: Path, *, chunk: int = 100_000, resume_from_ledger: bool = False
) -> dict[str, Any]:
    """Drain every event after the cursor into ``out/dt=YYYY-MM-DD/``; returns a summary.

    ``resume_from_ledger``: after a store rollback, move the store's cursor up to the folder's
    ledger (what the files already hold) instead of stopping."""
    started = time.perf_counter()
    cursor = events.exported_cursor(client)
    ledger = read_ledger(out)
    if resume_from_ledger and ledger is not None and events.id_before(cursor, ledger):
        events.advance(client, ledger)
        cursor = ledger
    _check_not_rolled_back(cursor, ledger, out)
    summary: dict[str, Any] = {
        "from_cursor": cursor, "events": 0, "files": 0, "duplicates_dropped": 0,
        "lost_warning": "",
    }  # fmt: skip
    seen: set[str] = set()
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
        table, dropped = _table(rows, seen)
        summary["duplicates_dropped"] += dropped
        if table.num_rows:
            summary["files"] += len(_write_chunk(out, table, rows[0][0]))
        cursor = rows[-1][0]
        events.advance(client, cursor)
        _write_ledger(out, cursor)  # after the store acknowledged it: never ahead of the store
        summary["events"] += len(rows)
    summary["to_cursor"] = cursor
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary
