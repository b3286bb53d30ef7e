"""Per exposed (user, rumor) pair, what happened after the exposure: was a debunk of that rumor
seen, how soon, was it clicked, and did the user share the rumor again afterwards.

Both inputs are streamed: the exposure logs through the join's scanner (memory grows with the
exposed pairs, not the logs), the debunk events batch by batch into per-pair aggregates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from offline.io import logs as logfiles
from offline.join.contracts import JoinSummary, prepare_tags
from offline.join.local import LocalEngine

TS = pa.timestamp("us", tz="UTC")
OUTCOME_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rumor_id", pa.string()),
        ("first_ts", TS),  # the first exposure inside the report window
        ("reached", pa.bool_()),  # a debunk impression for the rumor at or after first_ts
        ("debunked_ts", TS),  # the first such impression
        ("impressions", pa.int64()),  # debunk impressions for the rumor (any time in range)
        ("clicks", pa.int64()),
        ("reshared", pa.bool_()),  # shared the rumor after debunked_ts
    ]
)
_EVENT_COLUMNS = ["user_id", "rumor_id", "event", "ts", "experiment", "arm"]
_AGG_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rumor_id", pa.string()),
        ("imp_first", TS),
        ("imp_last", TS),
        ("impressions", pa.int64()),
        ("clicks", pa.int64()),
    ]
)
_FIRST_SCHEMA = pa.schema(
    [("user_id", pa.string()), ("rumor_id", pa.string()), ("debunked_ts", TS)]
)
_LABEL_SCHEMA = pa.schema([("user_id", pa.string()), ("arm", pa.string())])
_KEYS = ["user_id", "rumor_id"]
_COMPACT_ROWS = 2_000_000


@dataclass
class Outcomes:
    """One row per exposed pair (OUTCOME_SCHEMA) and the arm labels the service put on events."""

    pairs: pa.Table
    labels: pa.Table  # distinct (user_id, arm) of events labelled with the experiment
    summary: dict[str, Any] = field(default_factory=dict)


def day_range(date_from: date, date_to: date) -> list[str]:
    """Every YYYY-MM-DD from ``date_from`` to ``date_to`` inclusive."""
    return [
        (date_from + timedelta(days=i)).isoformat() for i in range((date_to - date_from).days + 1)
    ]


def _files(root: Path, days: list[str]) -> list[Path]:
    return [f for dt in days for f in logfiles.partition_files(root, dt)]


def _micros(t: float) -> int:
    return int(round(t * 1_000_000))


def exposed_pairs(
    logs: Path,
    tags: pa.Table,
    days: list[str],
    window: tuple[float, float],
    on_batch: Callable[[int], None] | None = None,
) -> tuple[pa.Table, JoinSummary]:
    """(user_id, rumor_id, first_ts, last_share_ts) of pairs first exposed inside ``window``."""
    summary = JoinSummary(partitions=len(days))
    partial = LocalEngine().scan(_files(logs, days), prepare_tags(tags), summary, on_batch=on_batch)
    pairs = partial.pairs.select(["user_id", "rumor_id", "first_ts", "last_share_ts"])
    lo, hi = (pa.scalar(_micros(t), pa.int64()).cast(TS) for t in window)
    inside = pc.and_(pc.greater_equal(pairs["first_ts"], lo), pc.less(pairs["first_ts"], hi))
    pairs = pairs.filter(inside)
    summary.pairs = pairs.num_rows
    return pairs, summary


def _event_scanner(events: Path, days: list[str]) -> ds.Scanner | None:
    """A scanner over the event partitions of ``days`` (None when there are none)."""
    files = [str(f) for f in _files(events, days)]
    if not files:
        return None
    dataset = ds.dataset(files, format="parquet")
    missing = [c for c in _EVENT_COLUMNS if c not in dataset.schema.names]
    if missing:
        raise ValueError(f"{events}: debunk events lack column(s) {missing}")
    return dataset.scanner(columns=_EVENT_COLUMNS, batch_size=1 << 20)


def _strings(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return col.dictionary_decode() if pa.types.is_dictionary(col.type) else col.cast(pa.string())


def _plain(batch: pa.RecordBatch) -> pa.Table:
    """An event batch with plain string columns (dictionary-encoded ones decoded)."""
    return pa.table({c: batch.column(c) if c == "ts" else _strings(batch.column(c))
                     for c in _EVENT_COLUMNS})  # fmt: skip


def _event_partial(batch: pa.RecordBatch, experiment: str) -> tuple[pa.Table, pa.Table]:
    """Per-pair impression/click aggregates of one batch, and its distinct (user, arm) labels."""
    t = _plain(batch)
    t = t.filter(pc.and_(pc.is_valid(t["rumor_id"]), pc.not_equal(t["rumor_id"], "")))
    is_imp = pc.equal(t["event"], "impression")
    null_ts = pa.scalar(None, TS)
    agg = pa.table(
        {
            "user_id": t["user_id"],
            "rumor_id": t["rumor_id"],
            "imp_first": pc.if_else(is_imp, t["ts"], null_ts),
            "imp_last": pc.if_else(is_imp, t["ts"], null_ts),
            "impressions": pc.cast(is_imp, pa.int64()),
            "clicks": pc.cast(pc.equal(t["event"], "click"), pa.int64()),
        }
    )
    labelled = t.filter(pc.equal(t["experiment"], experiment)).select(["user_id", "arm"])
    return _merge_events([agg]), labelled.group_by(["user_id", "arm"]).aggregate([])


def _merge_events(tables: list[pa.Table]) -> pa.Table:
    out = (
        pa.concat_tables(tables)
        .group_by(_KEYS, use_threads=False)
        .aggregate(
            [("imp_first", "min"), ("imp_last", "max"), ("impressions", "sum"), ("clicks", "sum")]
        )
    )
    return out.rename_columns([c.rsplit("_", 1)[0] if c not in _KEYS else c
                               for c in out.column_names])  # fmt: skip


def event_aggregates(
    events: Path, days: list[str], experiment: str, on_batch: Callable[[int], None] | None = None
) -> tuple[pa.Table, pa.Table, int]:
    """Per (user, rumor): first and last debunk impression, impressions, clicks; plus the
    distinct (user, arm) labels of the experiment's events; plus the events read."""
    scanner = _event_scanner(events, days)
    acc, labels, pending, rows = [_AGG_SCHEMA.empty_table()], [], 0, 0
    if scanner is not None:
        for batch in scanner.to_batches():
            rows += batch.num_rows
            part, lab = _event_partial(batch, experiment)
            acc.append(part)
            labels.append(lab)
            pending += part.num_rows
            if pending > _COMPACT_ROWS:
                acc, pending = [_merge_events(acc)], 0
            if on_batch:
                on_batch(batch.num_rows)
    distinct = pa.concat_tables([_LABEL_SCHEMA.empty_table(), *labels])
    distinct = distinct.group_by(["user_id", "arm"]).aggregate([])
    return _merge_events(acc), distinct, rows


def first_impression_after(events: Path, days: list[str], pairs: pa.Table) -> pa.Table:
    """For the few pairs whose debunk was seen both before and after the exposure, the first
    impression at or after it: a second, filtered pass over the events."""
    scanner = _event_scanner(events, days)
    found: list[pa.Table] = []
    if scanner is None:
        return _FIRST_SCHEMA.empty_table()
    wanted = pairs.select(["user_id", "rumor_id", "first_ts"])
    for batch in scanner.to_batches():
        t = _plain(batch)
        t = t.filter(pc.equal(t["event"], "impression")).select([*_KEYS, "ts"])
        hit = t.join(wanted, keys=_KEYS, join_type="inner", use_threads=False)
        hit = hit.filter(pc.greater_equal(hit["ts"], hit["first_ts"]))
        found.append(hit.group_by(_KEYS).aggregate([("ts", "min")]))
    merged = pa.concat_tables(found).group_by(_KEYS).aggregate([("ts_min", "min")])
    return merged.rename_columns([*_KEYS, "debunked_ts"])


def collect(
    logs: Path,
    events: Path,
    tags: pa.Table,
    window: tuple[float, float],
    date_from: date,
    date_to: date,
    experiment: str,
    *,
    attribution_days: int = 0,
    on_batch: Callable[[int], None] | None = None,
) -> Outcomes:
    """Outcomes of every pair first exposed inside ``window`` (unix seconds) and the days
    ``date_from``..``date_to``; debunk events count up to ``attribution_days`` after."""
    days = day_range(date_from, date_to)
    event_days = day_range(date_from, date_to + timedelta(days=attribution_days))
    pairs, joined = exposed_pairs(logs, tags, days, window, on_batch)
    agg, labels, event_rows = event_aggregates(events, event_days, experiment, on_batch)
    t = pairs.join(agg, keys=_KEYS, join_type="left outer", use_threads=False)
    first, seen_first, seen_last = t["first_ts"], t["imp_first"], t["imp_last"]
    reached = pc.fill_null(pc.greater_equal(seen_last, first), False)
    clean = pc.fill_null(pc.greater_equal(seen_first, first), False)
    debunked = pc.if_else(clean, seen_first, pa.scalar(None, TS))
    mixed = pc.and_(reached, pc.invert(clean))
    t = t.append_column("debunked_ts", debunked)
    if pc.any(mixed).as_py():
        exact = first_impression_after(events, event_days, t.filter(mixed))
        t = t.join(exact.rename_columns([*_KEYS, "exact_ts"]), keys=_KEYS, join_type="left outer",
                   use_threads=False)  # fmt: skip
        t = t.set_column(t.column_names.index("debunked_ts"), "debunked_ts",
                         pc.coalesce(t["debunked_ts"], t["exact_ts"]))  # fmt: skip
    reached = pc.is_valid(t["debunked_ts"])
    reshared = pc.fill_null(pc.greater(t["last_share_ts"], t["debunked_ts"]), False)
    out = pa.table(
        {
            "user_id": t["user_id"],
            "rumor_id": t["rumor_id"],
            "first_ts": t["first_ts"],
            "reached": reached,
            "debunked_ts": t["debunked_ts"],
            "impressions": pc.fill_null(t["impressions"], 0),
            "clicks": pc.fill_null(t["clicks"], 0),
            "reshared": reshared,
        },
        schema=OUTCOME_SCHEMA,
    ).sort_by([("user_id", "ascending"), ("rumor_id", "ascending")])
    summary = {
        "exposure_partitions": len(days),
        "exposure_rows_read": joined.rows_read,
        "exposure_rows_kept": joined.rows_kept,
        "exposure_rows_rejected": dict(sorted(joined.rows_rejected.items())),
        "event_rows_read": event_rows,
        "pairs": out.num_rows,
        "pairs_seen_before_and_after": int(pc.sum(pc.cast(mixed, pa.int64())).as_py() or 0),
    }
    return Outcomes(out, labels, summary)


def window_of(start: float, end: float, date_from: date, date_to: date) -> tuple[float, float]:
    """The experiment's time window clipped to the report's days (unix seconds)."""
    lo = datetime(date_from.year, date_from.month, date_from.day, tzinfo=UTC).timestamp()
    hi = datetime(date_to.year, date_to.month, date_to.day, tzinfo=UTC).timestamp() + 86_400
    return max(start, lo), min(end, hi)


def seconds_between(later: pa.ChunkedArray, earlier: pa.ChunkedArray) -> np.ndarray:
    """``later - earlier`` in seconds as float64 (NaN where either is null)."""
    a = pc.cast(later, pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64)
    b = pc.cast(earlier, pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64)
    return (a - b) / 1e6
