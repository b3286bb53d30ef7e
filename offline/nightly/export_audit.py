"""``debunk export-audit``: the live layer's audit stream to Parquet, as the events are.

Each chunk after the exported cursor is written under a name made from its first stream id,
aside and renamed, and the cursor (``dbk:{live}:audit-exported``) moves only after the file is
in place; a run killed in between rewrites the same file on the next run. The audit stream is
never trimmed, so a rewrite holds every row the earlier file had."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from feature_store import keys
from feature_store.live_catalog import AUDIT_FIELDS, audit_entries
from offline.io.parquet import write_parquet_atomic

AUDIT_SCHEMA = pa.schema(
    [("stream_id", pa.string()), ("ts", pa.timestamp("ms", tz="UTC"))]
    + [(f, pa.int64() if f == "seq" else pa.string()) for f in AUDIT_FIELDS if f != "ts"]
)
CHUNK = 10_000


def _table(rows: list[dict[str, str]]) -> pa.Table:
    """Audit entries as a table of AUDIT_SCHEMA."""
    cols: dict[str, list[Any]] = {f.name: [] for f in AUDIT_SCHEMA}
    for row in rows:
        for name in cols:
            value: Any = row.get(name, "")
            if name == "ts":
                value = datetime.fromtimestamp(float(value or 0), UTC)
            elif name == "seq":
                value = int(value or 0)
            cols[name].append(value)
    return pa.table(cols, schema=AUDIT_SCHEMA)


def export_audit(client, out: Path, *, chunk: int = CHUNK) -> dict[str, Any]:
    """Write every audit entry after the cursor into ``out/audit-<first id>.parquet`` files."""
    started = time.perf_counter()
    raw = client.get(keys.LIVE_AUDIT_EXPORTED)
    cursor = raw.decode() if raw else "-"
    summary: dict[str, Any] = {"from_cursor": cursor, "entries": 0, "files": 0}
    rows = audit_entries(client, after=cursor.encode())
    for lo in range(0, len(rows), chunk):
        part = rows[lo : lo + chunk]
        name = f"audit-{part[0]['stream_id'].replace('-', '_')}.parquet"
        write_parquet_atomic(_table(part), out / name)
        cursor = part[-1]["stream_id"]
        client.set(keys.LIVE_AUDIT_EXPORTED, cursor)
        summary["entries"] += len(part)
        summary["files"] += 1
    summary["to_cursor"] = cursor
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary
