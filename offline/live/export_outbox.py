"""``debunk export-outbox``: drain the notification outbox into Parquet, as export-events does
for the event stream (offline/nightly/export_events.py) and with the same safety.

Each chunk starts right after the exported cursor and is written under a name made from its
first stream id, aside and renamed, as the union with whatever an earlier (killed) drain left in
that file; the cursor moves only after the files are in place, and the folder's ledger
(``_outbox_cursor.json``) only after Redis acknowledged the cursor. So a drain killed at any
point is re-run from the same cursor and rewrites the same files (a superset, never a
duplicate), and a store whose cursor is behind the ledger (restored from an older dump,
restarted empty) stops the export before anything is written.

Unlike the event stream, the outbox is also read by the platform's push system: the export
trims only entries every consumer group has been delivered and none holds pending.
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

from feature_store import outbox
from offline.io import ledger
from offline.io.parquet import write_parquet_atomic

OUTBOX_SCHEMA = pa.schema(
    [
        ("notification_id", pa.string()),
        ("user_id", pa.string()),
        ("rumor_id", pa.string()),
        ("debunk_id", pa.string()),
        ("reason", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("stream_id", pa.string()),
    ]
)
LEDGER = "_outbox_cursor.json"


class OutboxExportError(RuntimeError):
    """The export cannot go on without losing or rewriting exported rows; nothing was written."""


def read_ledger(out: Path) -> str | None:
    """The last outbox id this folder holds, as recorded after the store acknowledged it."""
    return ledger.read_ledger(out, LEDGER, OutboxExportError)


def _write_ledger(out: Path, cursor: str) -> None:
    """Record ``cursor`` in the folder's ledger, atomically."""
    ledger.write_ledger(out, LEDGER, cursor)


def _table(rows: list[tuple[str, dict[str, str]]], seen: set[str]) -> tuple[pa.Table, int]:
    """The rows as a table without notification ids already in ``seen`` (added to it); also
    how many were dropped."""
    cols: dict[str, list[Any]] = {f.name: [] for f in OUTBOX_SCHEMA}
    dropped = 0
    for stream_id, fields in rows:
        nid = fields.get("notification_id", "")
        if nid in seen:
            dropped += 1
            continue
        seen.add(nid)
        for name in outbox.FIELDS:
            value: Any = fields.get(name, "")
            cols[name].append(
                datetime.fromtimestamp(int(value or 0), UTC) if name == "ts" else value
            )
        cols["stream_id"].append(stream_id)
    return pa.table(cols, schema=OUTBOX_SCHEMA), dropped


def _with_existing(part: pa.Table, path: Path) -> pa.Table:
    """``part`` plus the rows an earlier drain left in ``path`` that ``part`` lacks, in stream
    order: a rewrite never has fewer rows than the file it replaces."""
    if not path.exists():
        return part
    try:
        old = pq.read_table(path, schema=OUTBOX_SCHEMA)
    except (OSError, pa.ArrowInvalid) as e:
        raise OutboxExportError(
            f"{path}: cannot read the exported file to extend it ({e})"
        ) from None
    missing = old.filter(pc.invert(pc.is_in(old["stream_id"], value_set=part["stream_id"])))
    if not missing.num_rows:
        return part
    merged = pa.concat_tables([part, missing])
    order = [tuple(map(int, s.split("-"))) for s in merged["stream_id"].to_pylist()]
    return merged.take(sorted(range(len(order)), key=order.__getitem__))


def _write_chunk(out: Path, table: pa.Table, first_id: str) -> int:
    """One file per UTC day of the chunk, named after the chunk's first stream id."""
    days = pc.strftime(table["ts"], format="%Y-%m-%d")
    for day in sorted(set(days.to_pylist())):
        path = out / f"dt={day}" / f"outbox-{first_id.replace('-', '_')}.parquet"
        write_parquet_atomic(_with_existing(table.filter(pc.equal(days, day)), path), path)
    return len(set(days.to_pylist()))


def export_outbox(
    client: redis.Redis, out: Path, *, chunk: int = 100_000, resume_from_ledger: bool = False
) -> dict[str, Any]:
    """Drain every outbox entry after the cursor into ``out/dt=YYYY-MM-DD/``; a summary.

    ``resume_from_ledger``: after a store rollback, move the store's cursor up to the folder's
    ledger (what the files already hold) instead of stopping."""
    started = time.perf_counter()
    cursor, ledger = outbox.exported_cursor(client), read_ledger(out)
    if resume_from_ledger and ledger is not None and outbox.id_before(cursor, ledger):
        outbox.advance(client, ledger)
        cursor = ledger
    if ledger is not None and outbox.id_before(cursor, ledger):
        raise OutboxExportError(
            f"the store's outbox cursor {cursor} is behind {ledger}, the last entry already "
            f"exported to {out}: Redis lost acknowledged writes. Nothing was written. If the "
            f"store's state is what you expect now, run `debunk export-outbox --out {out} "
            "--resume-from-ledger`."
        )
    summary: dict[str, Any] = {"from_cursor": cursor, "notifications": 0, "files": 0,
                               "duplicates_dropped": 0}  # fmt: skip
    seen: set[str] = set()
    while rows := outbox.read_after(client, cursor, chunk):
        table, dropped = _table(rows, seen)
        summary["duplicates_dropped"] += dropped
        if table.num_rows:
            summary["files"] += _write_chunk(out, table, rows[0][0])
        cursor = rows[-1][0]
        outbox.advance(client, cursor)
        _write_ledger(out, cursor)  # after the store acknowledged it: never ahead of the store
        summary["notifications"] += len(rows)
    outbox.trim_consumed(client, cursor)
    summary["to_cursor"] = cursor
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary
