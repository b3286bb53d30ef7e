"""The exposure join: exposure logs semi-joined with tagged items, aggregated per (user, rumor).

The logs are scanned batch by batch with column projection and a vectorised membership filter on
the tagged item ids, so memory grows with the number of exposed pairs, not with the logs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from feature_store.vocab import ACTIONS, SURFACES

LOG_COLUMNS = ("user_id", "item_id", "ts", "surface", "action")
TS_TYPE = pa.timestamp("us", tz="UTC")
STATE_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rumor_id", pa.string()),
        ("exposures", pa.int64()),
        ("first_ts", TS_TYPE),
        ("last_ts", TS_TYPE),
        ("strongest_action", pa.string()),
        ("surface_mask", pa.int16()),
        ("shared", pa.bool_()),
    ]
)
_SURFACE_FLAGS = [f"on_{s}" for s in SURFACES]
# Compact the partial aggregates once they hold this many rows.
_COMPACT_ROWS = 4_000_000


@dataclass
class JoinSummary:
    """What one join read, kept and could not use."""

    partitions: int = 0
    rows_read: int = 0
    rows_kept: int = 0
    rows_rejected: dict[str, int] = field(default_factory=dict)
    pairs: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def log_dataset(logs: Path) -> ds.Dataset:
    """The exposure logs as a dataset partitioned by ``dt=YYYY-MM-DD`` (dt read as a string)."""
    partitioning = ds.partitioning(pa.schema([("dt", pa.string())]), flavor="hive")
    return ds.dataset(logs, format="parquet", partitioning=partitioning)


def partitions(logs: Path) -> list[str]:
    """The dt values present under ``logs``, sorted."""
    return sorted(p.name[3:] for p in Path(logs).glob("dt=*") if p.is_dir())


def _aggregate(table: pa.Table) -> pa.Table:
    """Per (user, rumor) partial aggregate of joined exposure rows."""
    aggs = [("ts", "count"), ("ts", "min"), ("ts", "max"), ("action_code", "max")]
    aggs += [(flag, "any") for flag in _SURFACE_FLAGS]
    out = table.group_by(["user_id", "rumor_id"], use_threads=False).aggregate(aggs)
    return out.rename_columns(_renamed(out.column_names))


def _renamed(columns: list[str]) -> list[str]:
    """Strip pyarrow's ``_count``/``_min``... suffixes back to the partial-aggregate names."""
    mapping = {
        "ts_count": "exposures",
        "ts_min": "first_ts",
        "ts_max": "last_ts",
        "action_code_max": "action_code",
        "exposures_sum": "exposures",
        "first_ts_min": "first_ts",
        "last_ts_max": "last_ts",
    }
    mapping.update({f"{f}_any": f for f in _SURFACE_FLAGS})
    return [mapping.get(c, c) for c in columns]


def _merge(partials: list[pa.Table]) -> pa.Table:
    """Combine partial aggregates of the same (user, rumor) into one row each."""
    table = pa.concat_tables(partials)
    aggs = [("exposures", "sum"), ("first_ts", "min"), ("last_ts", "max"), ("action_code", "max")]
    aggs += [(flag, "any") for flag in _SURFACE_FLAGS]
    out = table.group_by(["user_id", "rumor_id"], use_threads=False).aggregate(aggs)
    return out.rename_columns(_renamed(out.column_names))


def _valid_rows(table: pa.Table, summary: JoinSummary) -> pa.Table:
    """Keep rows with a user id, a time, a known action and surface; count the rest by reason."""
    if table.num_rows == 0:
        return table
    checks = {
        "null_or_empty_user_id": pc.fill_null(
            pc.greater(pc.utf8_length(table["user_id"]), 0), False
        ),
        "null_ts": pc.is_valid(table["ts"]),
        "unknown_action": pc.is_in(table["action"], value_set=pa.array(ACTIONS)),
        "unknown_surface": pc.is_in(table["surface"], value_set=pa.array(SURFACES)),
    }
    keep = pa.array(np.ones(table.num_rows, dtype=bool))
    for reason, ok in checks.items():
        bad = pc.sum(pc.and_(keep, pc.invert(ok))).as_py() or 0
        if bad:
            summary.rows_rejected[reason] = summary.rows_rejected.get(reason, 0) + bad
            keep = pc.and_(keep, ok)
    return table.filter(keep)


def _join_batch(
    batch: pa.RecordBatch, item_ids: pa.Array, tags: pa.Table, summary: JoinSummary
) -> pa.Table | None:
    """Rows of one batch on tagged items, validated, joined to their rumors and aggregated."""
    summary.rows_read += batch.num_rows
    null_items = batch.column("item_id").null_count
    if null_items:
        summary.rows_rejected["null_item_id"] = (
            summary.rows_rejected.get("null_item_id", 0) + null_items
        )
    hits = batch.filter(pc.is_in(batch.column("item_id"), value_set=item_ids))
    table = _valid_rows(pa.Table.from_batches([hits]), summary)
    if table.num_rows == 0:
        return None
    summary.rows_kept += table.num_rows
    table = table.join(tags, keys="item_id", join_type="inner", use_threads=False)
    surface_idx = pc.index_in(table["surface"], value_set=pa.array(SURFACES))
    columns = {
        "user_id": table["user_id"],
        "rumor_id": table["rumor_id"],
        "ts": pc.cast(table["ts"], TS_TYPE),
        "action_code": pc.index_in(table["action"], value_set=pa.array(ACTIONS)),
    }
    for i, flag in enumerate(_SURFACE_FLAGS):
        columns[flag] = pc.equal(surface_idx, i)
    return _aggregate(pa.table(columns))


def join_exposures(
    logs: Path, tags: pa.Table, *, dates: list[str] | None = None, batch_size: int = 1 << 20
) -> tuple[pa.Table, JoinSummary]:
    """Exposure state per (user, rumor) from the logs (optionally only the ``dates`` partitions)."""
    started = time.perf_counter()
    summary = JoinSummary()
    tags = tags.select(["item_id", "rumor_id"]).group_by(["item_id", "rumor_id"]).aggregate([])
    item_ids = pc.unique(tags["item_id"])
    dataset = log_dataset(logs)
    where = None if dates is None else pc.field("dt").isin(pa.array(dates, pa.string()))
    summary.partitions = len(dates) if dates is not None else len(partitions(logs))
    scanner = dataset.scanner(columns=list(LOG_COLUMNS), filter=where, batch_size=batch_size)
    partials: list[pa.Table] = []
    pending_rows = 0
    for batch in scanner.to_batches():
        part = _join_batch(batch, item_ids, tags, summary)
        if part is not None and part.num_rows:
            partials.append(part)
            pending_rows += part.num_rows
        if pending_rows > _COMPACT_ROWS:
            partials = [_merge(partials)]
            pending_rows = partials[0].num_rows
    state = finish_state(_merge(partials) if partials else None)
    summary.pairs = state.num_rows
    summary.seconds = round(time.perf_counter() - started, 3)
    return state, summary


def finish_state(merged: pa.Table | None) -> pa.Table:
    """Final columns in STATE_SCHEMA, sorted by (user_id, rumor_id)."""
    if merged is None or merged.num_rows == 0:
        return STATE_SCHEMA.empty_table()
    mask = pa.array([0] * merged.num_rows, pa.int16())
    for i, flag in enumerate(_SURFACE_FLAGS):
        bit = pc.if_else(merged[flag], pa.scalar(1 << i, pa.int16()), pa.scalar(0, pa.int16()))
        mask = pc.add(mask, bit)
    action = pc.take(pa.array(ACTIONS), merged["action_code"])
    state = pa.table(
        {
            "user_id": merged["user_id"],
            "rumor_id": merged["rumor_id"],
            "exposures": pc.cast(merged["exposures"], pa.int64()),
            "first_ts": merged["first_ts"],
            "last_ts": merged["last_ts"],
            "strongest_action": action,
            "surface_mask": mask,
            "shared": pc.equal(merged["action_code"], ACTIONS.index("share")),
        },
        schema=STATE_SCHEMA,
    )
    return state.sort_by([("user_id", "ascending"), ("rumor_id", "ascending")])


def write_parquet_atomic(table: pa.Table, path: Path) -> Path:
    """Write ``table`` beside ``path`` and rename it into place, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return path
