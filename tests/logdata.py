"""Hand-written exposure logs for join and state tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from offline.io.contracts import EXPOSURE_SCHEMA

LOG_SCHEMA = EXPOSURE_SCHEMA


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=UTC)


def write_logs(logs: Path, rows: list[tuple], name: str = "part-0.parquet") -> Path:
    """Write (user, item, ts, surface, action) rows into dt= partitions by ts (day 1 if none)."""
    by_day: dict[str, list[tuple]] = {}
    for row in rows:
        day = (row[2] or t(1)).date().isoformat()
        by_day.setdefault(day, []).append(row)
    for day, day_rows in by_day.items():
        part = logs / f"dt={day}"
        part.mkdir(parents=True, exist_ok=True)
        cols = list(zip(*day_rows, strict=True))
        table = pa.table(
            {f.name: pa.array(c, f.type) for f, c in zip(LOG_SCHEMA, cols, strict=True)}
        )
        pq.write_table(table, part / name)
    return logs


def tags(*pairs: tuple[str, str]) -> pa.Table:
    return pa.table({"item_id": [p[0] for p in pairs], "rumor_id": [p[1] for p in pairs]})


def by_pair(table: pa.Table) -> dict[tuple[str, str], dict]:
    return {(r["user_id"], r["rumor_id"]): r for r in table.to_pylist()}
