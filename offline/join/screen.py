"""Batch screening for the local engine: validate one decoded log batch (bad rows set aside with a
reason) and keep only the rows the id prefilter cannot rule out, as compact candidate rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from domain.vocab import ACTIONS, SURFACES
from offline.io import logs as logfiles
from offline.join.contracts import TS_TYPE
from offline.join.idfilter import IdFilter

# Candidate rows (after the prefilter): ids as plain strings, action and surface as codes.
CANDIDATE_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("ts", TS_TYPE),
        ("action_code", pa.int8()),
        ("surface_code", pa.int8()),
    ]
)


@dataclass
class BatchResult:
    """What one batch contributed: its candidate rows, rejected rows and counts."""

    rows: int
    candidates: pa.Table | None = None
    rejected: list[tuple[str, pa.Table]] = field(default_factory=list)


def _codes(column: pa.Array, vocabulary: tuple[str, ...]) -> pa.Array:
    """Index of each value in ``vocabulary`` (null when unknown), via the dictionary if any."""
    if pa.types.is_dictionary(column.type):
        known = pc.index_in(column.dictionary, value_set=pa.array(vocabulary))
        return pc.take(known, column.indices)
    return pc.index_in(column, value_set=pa.array(vocabulary))


def _known(column: pa.Array, vocabulary: tuple[str, ...]) -> pa.Array | None:
    """Mask of values in ``vocabulary``; None when all are (checked once per dictionary)."""
    if pa.types.is_dictionary(column.type):
        known = pc.is_in(column.dictionary, value_set=pa.array(vocabulary))
        if column.indices.null_count == 0 and pc.all(known).as_py() is not False:
            return None
        return pc.fill_null(pc.take(known, column.indices), False)
    ok = pc.fill_null(pc.is_in(column, value_set=pa.array(vocabulary)), False)
    return None if pc.all(ok).as_py() is not False else ok


def _present(column: pa.Array) -> pa.Array | None:
    """Mask of non-null, non-empty strings; None when every value is fine (the common case)."""
    if column.null_count == 0 and pc.min(pc.binary_length(column)).as_py() != 0:
        return None
    return pc.fill_null(pc.greater(pc.binary_length(column), 0), False)


def utc_timestamps(column: pa.Array, is_text: bool) -> pa.Array:
    """The ts column as UTC microseconds; unparseable text becomes null."""
    if is_text:
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        try:
            return pc.cast(pc.cast(column, pa.timestamp("us")), TS_TYPE)
        except pa.ArrowInvalid:
            return pa.array([parse_ts(v) for v in column.to_pylist()], TS_TYPE)
    if column.type.tz is None:
        column = pc.assume_timezone(column, "UTC")
    return pc.cast(column, TS_TYPE)


def parse_ts(value: str | None) -> datetime | None:
    """One ISO 8601 text timestamp in UTC (naive text is UTC); None when it does not parse."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def validate(lb: logfiles.LogBatch, result: BatchResult) -> pa.RecordBatch:
    """The batch's valid rows (ts as UTC microseconds); bad rows are set aside with a reason.
    A record batch, not a table: taking rows from a table's chunked string columns would first
    copy every value of the batch into one chunk."""
    b = lb.batch
    ts = utc_timestamps(b.column("ts"), lb.ts_is_text)
    checks = [
        ("null_or_empty_user_id", _present(b.column("user_id"))),
        ("null_or_empty_item_id", _present(b.column("item_id"))),
        (
            "unparseable_ts" if lb.ts_is_text else "null_ts",
            pc.is_valid(ts) if ts.null_count else None,
        ),
        ("unknown_action", _known(b.column("action"), ACTIONS)),
        ("unknown_surface", _known(b.column("surface"), SURFACES)),
    ]
    valid = pa.record_batch(
        {"user_id": b.column("user_id"), "item_id": b.column("item_id"), "ts": ts,
         "action": b.column("action"), "surface": b.column("surface")}
    )  # fmt: skip
    keep: pa.Array | None = None
    for reason, ok in checks:
        if ok is None:
            continue
        failing = pc.invert(ok) if keep is None else pc.and_(keep, pc.invert(ok))
        if pc.any(failing).as_py():
            result.rejected.append((reason, pa.Table.from_batches([b]).filter(failing)))
            keep = ok if keep is None else pc.and_(keep, ok)
    return valid if keep is None else valid.filter(keep)


def screen_batch(
    lb: logfiles.LogBatch, prefilter: IdFilter, before: datetime | None = None
) -> BatchResult:
    """Validate one batch and keep the rows the prefilter cannot rule out (a few percent),
    with ids as strings and action/surface as codes, ready for the exact join; with
    ``before`` (a snapshot's watermark), only the valid rows before it."""
    result = BatchResult(rows=lb.batch.num_rows)
    valid = validate(lb, result)
    if before is not None:
        valid = valid.filter(pc.less(valid["ts"], pa.scalar(before, TS_TYPE)))
    maybe = prefilter.candidate_rows(valid["item_id"])
    rows = valid.take(maybe) if len(maybe) < valid.num_rows else valid
    result.candidates = pa.table(
        {
            "user_id": pc.cast(rows["user_id"], pa.string()),
            "item_id": pc.cast(rows["item_id"], pa.string()),
            "ts": rows["ts"],
            "action_code": pc.cast(_codes(rows["action"], ACTIONS), pa.int8()),
            "surface_code": pc.cast(_codes(rows["surface"], SURFACES), pa.int8()),
        },
        schema=CANDIDATE_SCHEMA,
    )
    return result


def screen_file(
    path: str,
    ts_is_text: bool,
    prefilter: IdFilter,
    batch_size: int,
    row_groups: list[int] | None = None,
    before: datetime | None = None,
) -> list[BatchResult]:
    """Decode and screen one file (or only its ``row_groups``) batch by batch in this thread;
    only the (small) screened results are kept, so memory holds one decoded batch per worker."""
    return [
        screen_batch(lb, prefilter, before)
        for lb in logfiles.read_batches(
            path, ts_is_text, batch_size=batch_size, row_groups=row_groups
        )
    ]
