"""Per exposed (user, rumor) pair, what happened after the exposure: was a debunk of that rumor
seen, how soon, was it clicked, and did the user share the rumor again afterwards.

Both inputs are streamed: the exposure logs through the join's scanner (memory grows with the
exposed pairs, not the logs), then the debunk events batch by batch, joined to the exposed pairs,
into per-pair aggregates. One rule of time for every metric: an event counts for a pair when it
comes at or after the pair's first exposure (reach, impressions and clicks alike); the events
before it, and those of pairs that were not exposed, are counted apart for the scope section.
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
from offline.join.contracts import PAIR_SCHEMA, JoinSummary, prepare_tags
from offline.join.fold import SpilledPartial, pair_chunks
from offline.join.local import LocalEngine

TS = pa.timestamp("us", tz="UTC")
OUTCOME_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rumor_id", pa.string()),
        ("first_ts", TS),  # the first exposure inside the report window
        ("reached", pa.bool_()),  # a debunk impression for the rumor at or after first_ts
        ("debunked_ts", TS),  # the first such impression
        ("impressions", pa.int64()),  # debunk impressions for the rumor at or after first_ts
        ("clicks", pa.int64()),  # debunk clicks for the rumor at or after first_ts
        ("reshared", pa.bool_()),  # shared the rumor after debunked_ts
        ("pre_impressions", pa.int64()),  # impressions before first_ts: counted nowhere
        ("pre_clicks", pa.int64()),  # clicks before first_ts: counted nowhere
    ]
)
_EVENT_COLUMNS = ["user_id", "rumor_id", "event", "ts", "experiment", "arm"]
_AGG_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rumor_id", pa.string()),
        ("imp_first", TS),
        ("impressions", pa.int64()),
        ("clicks", pa.int64()),
        ("pre_impressions", pa.int64()),
        ("pre_clicks", pa.int64()),
    ]
)
_LABEL_SCHEMA = pa.schema([("user_id", pa.string()), ("arm", pa.string()), ("events", pa.int64())])
_KEYS = ["user_id", "rumor_id"]
_PAIR_COLUMNS = ["user_id", "rumor_id", "first_ts", "last_share_ts"]
_COMPACT_ROWS = 2_000_000
# What the event pass counts beside the pairs (the report's scope section).
SCOPE_COUNTS = (
    "impressions_after_exposure",  # of exposed pairs, at or after the first exposure: counted
    "impressions_before_exposure",  # of exposed pairs, before their first exposure: not counted
    "impressions_outside_pairs",  # of (user, rumor) pairs not exposed in the window
    "impressions_without_rumor",  # events with no rumor id
    "clicks_after_exposure",
    "clicks_before_exposure",
    "clicks_outside_pairs",
)


@dataclass
class Outcomes:
    """One row per exposed pair (OUTCOME_SCHEMA) and the arm labels the service put on events."""

    pairs: pa.Table
    labels: pa.Table  # distinct (user_id, arm) of events labelled with the experiment, and events
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
    engine: LocalEngine | None = None,
) -> tuple[pa.Table, JoinSummary]:
    """(user_id, rumor_id, first_ts, last_share_ts) of pairs first exposed inside ``window``.
    A scan past its memory budget leaves its pairs on disk: they are read back group by group
    (pair_chunks), each group filtered to the window before the next is read."""
    summary = JoinSummary(partitions=len(days))
    engine = engine if engine is not None else LocalEngine()
    partial = engine.scan(_files(logs, days), prepare_tags(tags), summary, on_batch=on_batch)
    lo, hi = (pa.scalar(_micros(t), pa.int64()).cast(TS) for t in window)
    try:
        kept = [_inside(chunk, lo, hi) for chunk in pair_chunks(partial)]
    finally:
        if isinstance(partial, SpilledPartial):
            partial.close()
    empty = PAIR_SCHEMA.empty_table().select(_PAIR_COLUMNS)
    pairs = pa.concat_tables(kept) if kept else empty
    summary.pairs = pairs.num_rows
    return pairs, summary


def _inside(chunk: pa.Table, lo: pa.Scalar, hi: pa.Scalar) -> pa.Table:
    """The pairs of ``chunk`` first exposed in [lo, hi), with the columns outcomes need."""
    pairs = chunk.select(_PAIR_COLUMNS)
    return pairs.filter(
        pc.and_(pc.greater_equal(pairs["first_ts"], lo), pc.less(pairs["first_ts"], hi))
    )


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


def _count(mask: pa.Array) -> int:
    """How many entries of a boolean mask are true."""
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def _event_partial(
    batch: pa.RecordBatch, experiment: str, wanted: pa.Table
) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """One batch's per-pair aggregates (impressions and clicks at or after the pair's first
    exposure, and before it), its (user, arm) labels with their event counts, and the scope
    counts of the events that fall outside the exposed pairs."""
    t = _plain(batch)
    labelled = t.filter(pc.equal(t["experiment"], experiment)).select(["user_id", "arm"])
    labels = labelled.group_by(["user_id", "arm"], use_threads=False).aggregate(
        [("user_id", "count")]
    )
    has_rumor = pc.fill_null(pc.and_(pc.is_valid(t["rumor_id"]), pc.not_equal(t["rumor_id"], "")),
                             False)  # fmt: skip
    counts = {"impressions_without_rumor": _count(pc.and_(pc.equal(t["event"], "impression"),
                                                          pc.invert(has_rumor)))}  # fmt: skip
    t = t.filter(has_rumor).join(wanted, keys=_KEYS, join_type="left outer", use_threads=False)
    is_imp = pc.equal(t["event"], "impression")
    is_click = pc.equal(t["event"], "click")
    outside = pc.is_null(t["first_ts"])
    after = pc.fill_null(pc.greater_equal(t["ts"], t["first_ts"]), False)
    before = pc.fill_null(pc.less(t["ts"], t["first_ts"]), False)
    for name, mask in (("impressions", is_imp), ("clicks", is_click)):
        counts[f"{name}_after_exposure"] = _count(pc.and_(mask, after))
        counts[f"{name}_before_exposure"] = _count(pc.and_(mask, before))
        counts[f"{name}_outside_pairs"] = _count(pc.and_(mask, outside))
    seen = pc.and_(is_imp, after)
    agg = pa.table(
        {
            "user_id": t["user_id"],
            "rumor_id": t["rumor_id"],
            "imp_first": pc.if_else(seen, t["ts"], pa.scalar(None, TS)),
            "impressions": pc.cast(seen, pa.int64()),
            "clicks": pc.cast(pc.and_(is_click, after), pa.int64()),
            "pre_impressions": pc.cast(pc.and_(is_imp, before), pa.int64()),
            "pre_clicks": pc.cast(pc.and_(is_click, before), pa.int64()),
        },
        schema=_AGG_SCHEMA,
    ).filter(pc.invert(outside))
    labels = labels.select(["user_id", "arm", "user_id_count"])
    return _merge_events([agg]), labels.rename_columns(["user_id", "arm", "events"]), counts


def _merge_events(tables: list[pa.Table]) -> pa.Table:
    """Per-pair aggregates of several partial tables merged into one row per pair."""
    out = (
        pa.concat_tables(tables)
        .group_by(_KEYS, use_threads=False)
        .aggregate(
            [("imp_first", "min"), ("impressions", "sum"), ("clicks", "sum"),
             ("pre_impressions", "sum"), ("pre_clicks", "sum")]
        )
    )  # fmt: skip
    return out.rename_columns([c.rsplit("_", 1)[0] if c not in _KEYS else c
                               for c in out.column_names])  # fmt: skip


def _merge_labels(tables: list[pa.Table]) -> pa.Table:
    """(user, arm) labels of several batches summed into one row each."""
    out = pa.concat_tables([_LABEL_SCHEMA.empty_table(), *tables])
    out = out.group_by(["user_id", "arm"], use_threads=False).aggregate([("events", "sum")])
    return out.select(["user_id", "arm", "events_sum"]).rename_columns(["user_id", "arm", "events"])


def event_aggregates(
    events: Path,
    days: list[str],
    experiment: str,
    pairs: pa.Table,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[pa.Table, pa.Table, int, dict[str, int]]:
    """Per exposed pair (``pairs``: user_id, rumor_id, first_ts): the first debunk impression at
    or after the first exposure, impressions and clicks at or after it and before it; the
    (user, arm) labels of the experiment's events with their counts; the events read; and the
    scope counts (SCOPE_COUNTS). One rule of time: only events at or after the exposure count."""
    scanner = _event_scanner(events, days)
    wanted = pairs.select([*_KEYS, "first_ts"])
    acc, labels, pending, rows = [_AGG_SCHEMA.empty_table()], [], 0, 0
    counts = dict.fromkeys(SCOPE_COUNTS, 0)
    if scanner is not None:
        for batch in scanner.to_batches():
            rows += batch.num_rows
            part, lab, found = _event_partial(batch, experiment, wanted)
            acc.append(part)
            labels.append(lab)
            for name, n in found.items():
                counts[name] += n
            pending += part.num_rows
            if pending > _COMPACT_ROWS:
                acc, pending = [_merge_events(acc)], 0
                labels = [_merge_labels(labels)]
            if on_batch:
                on_batch(batch.num_rows)
    return _merge_events(acc), _merge_labels(labels), rows, counts


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
    agg, labels, event_rows, counts = event_aggregates(
        events, event_days, experiment, pairs, on_batch
    )
    t = pairs.join(agg, keys=_KEYS, join_type="left outer", use_threads=False)
    debunked = t["imp_first"]
    reached = pc.is_valid(debunked)
    pre = pc.fill_null(t["pre_impressions"], 0)
    mixed = pc.and_(reached, pc.greater(pre, 0))
    out = pa.table(
        {
            "user_id": t["user_id"],
            "rumor_id": t["rumor_id"],
            "first_ts": t["first_ts"],
            "reached": reached,
            "debunked_ts": debunked,
            "impressions": pc.fill_null(t["impressions"], 0),
            "clicks": pc.fill_null(t["clicks"], 0),
            "reshared": pc.fill_null(pc.greater(t["last_share_ts"], debunked), False),
            "pre_impressions": pre,
            "pre_clicks": pc.fill_null(t["pre_clicks"], 0),
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
        "pairs_seen_before_and_after": _count(mixed),
        "event_scope": counts,
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
