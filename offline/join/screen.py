"""Batch screening for the local engine: validate one decoded log batch (bad rows set aside with a
reason) and keep only the rows that may be on tagged items, as compact candidate rows.

A batch whose item_id is a dictionary (a dictionary-encoded file, see offline.join.layout) is
screened once per dictionary entry: each entry is tested exactly against the tagged items, and a
take on the row's indices finds the rows on tagged items and their tag at once (``hits``, no
exact join left to do). Plain item ids go through the prefilter's C scan row by row, and the
candidates are joined exactly later (offline.join.tag_index.join_candidates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from domain.vocab import ACTIONS, SURFACES
from offline.io import logs as logfiles
from offline.join import selective
from offline.join.contracts import TS_TYPE
from offline.join.layout import dictionary_ids
from offline.join.tag_index import TagIndex

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
# Rows known to be on tagged items: a candidate row and its item's position in the TagIndex.
HIT_SCHEMA = CANDIDATE_SCHEMA.append(pa.field("tag_pos", pa.int32()))


@dataclass
class BatchResult:
    """What one batch contributed: its candidate rows, rejected rows and counts."""

    rows: int
    candidates: pa.Table | None = None  # CANDIDATE_SCHEMA: still to be joined exactly
    hits: pa.Table | None = None  # HIT_SCHEMA: on tagged items (dictionary-screened batches)
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
    """Mask of non-null, non-empty strings; None when every value is fine (the common case).
    A dictionary's entries are checked once each."""
    if pa.types.is_dictionary(column.type):
        entries = _present(column.dictionary)
        if entries is None and column.null_count == 0:
            return None
        ok = pa.array(np.ones(len(column.dictionary), bool)) if entries is None else entries
        return pc.fill_null(pc.take(ok, column.indices), False)
    if column.null_count == 0 and pc.min(pc.binary_length(column)).as_py() != 0:
        return None
    return pc.fill_null(pc.greater(pc.binary_length(column), 0), False)


def _as_strings(column: pa.Array) -> pa.Array:
    """A (dictionary or plain) string column as plain strings."""
    if pa.types.is_dictionary(column.type):
        return column.dictionary_decode()
    return pc.cast(column, pa.string())


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
            result.rejected.append((reason, _rejected_rows(b, failing)))
            keep = ok if keep is None else pc.and_(keep, ok)
    return valid if keep is None else valid.filter(keep)


def _rejected_rows(batch: pa.RecordBatch, failing: pa.Array) -> pa.Table:
    """The failing rows of a batch, with id columns read as dictionaries back to strings (a
    reject file looks the same whichever way the log file was read)."""
    rows = pa.Table.from_batches([batch]).filter(failing)
    for name in ("user_id", "item_id"):
        column = rows[name]
        if pa.types.is_dictionary(column.type):
            i = rows.column_names.index(name)
            rows = rows.set_column(i, name, column.cast(column.type.value_type))
    return rows


def screen_batch(
    lb: logfiles.LogBatch, index: TagIndex, before: datetime | None = None
) -> BatchResult:
    """Validate one batch and keep the rows that may be on tagged items (a few percent), with
    ids as strings and action/surface as codes: as ``hits`` when item_id is a dictionary (its
    entries tested once each), else as ``candidates`` for the exact join; with ``before`` (a
    snapshot's watermark), only the valid rows before it."""
    result = BatchResult(rows=lb.batch.num_rows)
    valid = validate(lb, result)
    if before is not None:
        valid = valid.filter(pc.less(valid["ts"], pa.scalar(before, TS_TYPE)))
    items = valid["item_id"]
    if pa.types.is_dictionary(items.type):
        result.hits = _dictionary_hits(valid, index)
        return result
    maybe = index.prefilter.candidate_rows(items)
    rows = valid.take(maybe) if len(maybe) < valid.num_rows else valid
    result.candidates = pa.table(_candidate_columns(rows), schema=CANDIDATE_SCHEMA)
    return result


def _candidate_columns(rows: pa.RecordBatch) -> dict[str, pa.Array]:
    """The CANDIDATE_SCHEMA columns of some valid rows."""
    return {
        "user_id": _as_strings(rows["user_id"]),
        "item_id": _as_strings(rows["item_id"]),
        "ts": rows["ts"],
        "action_code": pc.cast(_codes(rows["action"], ACTIONS), pa.int8()),
        "surface_code": pc.cast(_codes(rows["surface"], SURFACES), pa.int8()),
    }


def _dictionary_hits(valid: pa.RecordBatch, index: TagIndex) -> pa.Table:
    """The rows of a batch with a dictionary item_id that are on tagged items (HIT_SCHEMA):
    each dictionary entry's tag position is found once, then mapped onto the rows' indices."""
    items = valid["item_id"]
    entry = index.entry_positions(items.dictionary)
    indices = items.indices.to_numpy(zero_copy_only=False)  # no nulls: validation dropped them
    position = entry[indices]
    rows = np.flatnonzero(position >= 0)
    hits = valid.take(pa.array(rows)) if len(rows) < valid.num_rows else valid
    return pa.table(
        {**_candidate_columns(hits), "tag_pos": pa.array(position[rows], pa.int32())},
        schema=HIT_SCHEMA,
    )


def screen_file(
    path: str,
    ts_is_text: bool,
    index: TagIndex,
    batch_size: int,
    row_groups: list[int] | None = None,
    before: datetime | None = None,
) -> list[BatchResult]:
    """Decode and screen one file (or only its ``row_groups``) batch by batch in this thread;
    only the (small) screened results are kept, so memory holds one decoded batch per worker.
    Row groups the selective decoder reads (offline.join.selective: item_id first, the other
    columns at the hit rows only) are screened there; the rest are decoded whole, with the id
    columns the file stores dictionary-encoded read as dictionaries."""
    results: list[BatchResult] = []
    rest = row_groups
    if not ts_is_text and row_groups != [] and selective.available():
        done, rest = selective.screen_groups(path, row_groups, index, before)
        results = [BatchResult(rows=n, hits=hits.cast(HIT_SCHEMA)) for n, hits in done]
        if rest == []:
            return results
    dictionaries = dictionary_ids(path, rest)
    return results + [
        screen_batch(lb, index, before)
        for lb in logfiles.read_batches(
            path, ts_is_text, batch_size=batch_size, row_groups=rest, dictionaries=dictionaries,
        )
    ]  # fmt: skip
