"""Pair aggregation for the local engine: joined rumor rows into per-(user, rumor) partial
aggregates, their merge (hash, sort-and-reduce, or reduce by integer key ranks, in two user
ranges at once), and the final exposure-state columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from domain.vocab import ACTIONS, SURFACES
from offline.join.contracts import (
    FLAGS,
    PAIR_MERGE,
    PAIR_SCHEMA,
    SHARE,
    STATE_SCHEMA,
    SURFACE_COUNT_SCHEMA,
    TS_TYPE,
    Partial,
)

try:
    from offline.join import _pairsort
except ImportError:  # built without a C compiler: numpy sorts and reduces (the same pairs)
    _pairsort = None

SORT_KEYS = [("user_id", "ascending"), ("rumor_id", "ascending")]
# Below this many rows one sort is about as fast as splitting in two.
_PARALLEL_SORT_ROWS = 200_000
# Below this many pair rows one merge is about as fast as two halves at once.
_PARALLEL_MERGE_ROWS = 200_000
# _pairsort.reduce_runs' kind of each (PAIR_MERGE reduce, Arrow storage type), and the numpy
# type of its output.
_NATIVE_KINDS = {
    ("sum", pa.int64()): (0, np.int64),
    ("min", pa.int64()): (1, np.int64),
    ("max", pa.int64()): (2, np.int64),
    ("max", pa.int8()): (3, np.int8),
    ("any", pa.bool_()): (4, np.uint8),
    ("max", pa.float32()): (5, np.float32),
}
# The rumor ranks _pairsort.pair_order takes: below 2**27.
_NATIVE_RANKS = 1 << 27


def aggregate_hits(hits: pa.Table) -> Partial:
    """Partial aggregates of joined rumor rows (candidate columns plus rumor_id and the
    tag_score of the tag that joined them)."""
    share_ts = pc.if_else(
        pc.equal(hits["action_code"], SHARE), hits["ts"], pa.scalar(None, TS_TYPE)
    )
    cols: dict[str, Any] = {
        "user_id": hits["user_id"],
        "rumor_id": hits["rumor_id"],
        "exposures": pa.array(np.ones(hits.num_rows, dtype=np.int64)),
        "first_ts": hits["ts"],
        "last_ts": hits["ts"],
        "action_code": hits["action_code"],
    }
    for i, flag in enumerate(FLAGS):
        cols[flag] = pc.equal(hits["surface_code"], i)
    cols["first_share_ts"] = share_ts
    cols["last_share_ts"] = share_ts
    cols["tag_score"] = hits["tag_score"]
    pairs = merge_pairs([pa.table(cols)])  # hashing beats sorting when order is not needed
    counted = hits.group_by(["rumor_id", "surface_code"], use_threads=False).aggregate(
        [("ts", "count")]
    )
    surfaces = pa.table(
        {
            "rumor_id": counted["rumor_id"],
            "surface": pc.take(pa.array(SURFACES), counted["surface_code"]),
            "exposures": pc.cast(counted["ts_count"], pa.int64()),
        },
        schema=SURFACE_COUNT_SCHEMA,
    )
    return Partial(pairs, surfaces)


def merge_pairs(tables: list[pa.Table]) -> pa.Table:
    """Combine pair aggregates so each (user, rumor) appears once."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return PAIR_SCHEMA.empty_table()
    out = (
        pa.concat_tables(tables)
        .group_by(["user_id", "rumor_id"], use_threads=False)
        .aggregate(list(PAIR_MERGE))
    )
    return (
        out.rename_columns(
            [
                c.rsplit("_", 1)[0] if c[-4:] in ("_sum", "_min", "_max", "_any") else c
                for c in out.column_names
            ]
        )
        .select(PAIR_SCHEMA.names)
        .cast(PAIR_SCHEMA)
    )


def merge_surfaces(tables: list[pa.Table]) -> pa.Table:
    """Combine per (rumor, surface) exposure counts."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return SURFACE_COUNT_SCHEMA.empty_table()
    out = (
        pa.concat_tables(tables)
        .group_by(["rumor_id", "surface"], use_threads=False)
        .aggregate([("exposures", "sum")])
    )
    return out.rename_columns(["rumor_id", "surface", "exposures"]).select(
        SURFACE_COUNT_SCHEMA.names
    )


def merge(partials: Iterable[Partial], pool: ThreadPoolExecutor | None = None) -> Partial:
    """One partial aggregate of many. With a ``pool`` and many pairs, the pairs come out sorted
    by (user_id, rumor_id): they are split into two ranges of users, and each range is sorted
    and merged (see merge_sorted) in the pool at once, while this thread merges the (few)
    surface counts. Arrow groups and sorts on one thread, and the output is sorted anyway."""
    partials = list(partials)
    tables = [p.pairs for p in partials if p.pairs.num_rows]
    if not tables:
        return Partial(PAIR_SCHEMA.empty_table(), merge_surfaces([p.surfaces for p in partials]))
    if pool is None or sum(t.num_rows for t in tables) < _PARALLEL_MERGE_ROWS:
        pairs = reduce_pairs(pa.concat_tables(tables))
        return Partial(pairs, merge_surfaces([p.surfaces for p in partials]))
    halves = [pool.submit(reduce_pairs, half) for half in _split_users(pa.concat_tables(tables))]
    surfaces = merge_surfaces([p.surfaces for p in partials])
    return Partial(pa.concat_tables([half.result() for half in halves]), surfaces)


def merge_sorted(pairs: pa.Table) -> pa.Table:
    """Pair aggregates combined so each (user, rumor) appears once, sorted by (user, rumor).

    The same result as merge_pairs then a sort, by one sort and a numpy reduction of each run
    of equal keys: cheaper than hashing the two string keys and sorting after."""
    if not pairs.num_rows:
        return PAIR_SCHEMA.empty_table()
    ordered = pairs.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA).sort_by(SORT_KEYS)
    ordered = ordered.combine_chunks()
    users, rumors = ordered["user_id"], ordered["rumor_id"]
    new_key = pc.or_(pc.not_equal(users[1:], users[:-1]), pc.not_equal(rumors[1:], rumors[:-1]))
    starts = np.flatnonzero(np.concatenate([[True], new_key.to_numpy(zero_copy_only=False)]))
    if len(starts) == ordered.num_rows:
        return ordered
    reduce: dict[str, np.ufunc] = {"sum": np.add, "min": np.minimum, "max": np.maximum}
    reduce["any"] = np.logical_or
    columns = {
        "user_id": users.take(starts),
        "rumor_id": rumors.take(starts),
        **{name: _reduce_runs(ordered[name], starts, reduce[how]) for name, how in PAIR_MERGE},
    }
    return pa.table(columns, schema=PAIR_SCHEMA)


def reduce_pairs(pairs: pa.Table, *, native: bool = True) -> pa.Table:
    """Pair aggregates combined so each (user, rumor) appears once, sorted by (user, rumor):
    the same result as merge_sorted, cheaper for many rows. With the C extension (and
    ``native``) the rows are put in order and each run reduced in C (_reduce_native); else:

    Each id column is dictionary-encoded once and its distinct values sorted, so every row gets
    its user's and its rumor's rank; one int64 key (user rank x rumors + rumor rank) then sorts
    in id order, and numpy reduces each run of equal keys. Sorting and grouping integers avoids
    hashing and comparing the two string keys per row (Arrow's group_by with 14 aggregates
    costs ~1 us a row)."""
    if not pairs.num_rows:
        return PAIR_SCHEMA.empty_table()
    pairs = pairs.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA)
    if pairs["user_id"].null_count or pairs["rumor_id"].null_count:
        return merge_sorted(pairs)
    if _pairsort is not None and native:
        reduced = _reduce_native(pairs)
        if reduced is not None:
            return reduced
    user_rank, users = _ranks(pairs["user_id"])
    rumor_rank, rumors = _ranks(pairs["rumor_id"])
    key = user_rank * len(rumors) + rumor_rank
    order = np.argsort(key)  # equal keys' rows in any order: every reduce is commutative
    key = key[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    run_key = key[starts]
    reduce: dict[str, np.ufunc] = {"sum": np.add, "min": np.minimum, "max": np.maximum}
    reduce["any"] = np.logical_or
    columns = {
        "user_id": users.take(pa.array(run_key // len(rumors))),
        "rumor_id": rumors.take(pa.array(run_key % len(rumors))),
        **{name: _reduce_runs(pairs[name], starts, reduce[how], order) for name, how in PAIR_MERGE},
    }
    return pa.table(columns, schema=PAIR_SCHEMA)


def _reduce_native(pairs: pa.Table) -> pa.Table | None:
    """reduce_pairs' result (pairs: PAIR_SCHEMA, no null ids) by _pairsort: the rows ordered
    by (user id bytes, rumor rank) in one radix sort and each value column reduced over the
    runs of equal pairs; None when it cannot (too many rumors, or offsets past 2 GB)."""
    users = pairs["user_id"].combine_chunks()
    rumor_rank, rumors = _ranks(pairs["rumor_id"])
    n = pairs.num_rows
    if len(rumors) >= _NATIVE_RANKS or n >= np.iinfo(np.int32).max:
        return None
    _, offsets, data = users.buffers()
    order, starts = np.empty(n, np.int64), np.empty(n, np.int64)
    ranks = rumor_rank.astype(np.uint32)
    runs = _pairsort.pair_order(
        offsets, users.offset, n, b"" if data is None else data, ranks, order, starts
    )
    starts = starts[:runs]
    first = order[starts]
    columns = {
        "user_id": users.take(pa.array(first)),
        "rumor_id": rumors.take(pa.array(rumor_rank[first])),
        **{name: _native_runs(pairs[name], how, order, starts) for name, how in PAIR_MERGE},
    }
    return pa.table(columns, schema=PAIR_SCHEMA)


def _native_runs(
    column: pa.ChunkedArray, how: str, order: np.ndarray, starts: np.ndarray
) -> pa.Array:
    """``how`` (PAIR_MERGE's) over each run of ``column`` in ``order`` from ``starts``, in C,
    skipping nulls (a run of nulls only gives null), as _reduce_runs does."""
    array = column.combine_chunks()
    storage = pa.int64() if pa.types.is_timestamp(array.type) else array.type
    kind, dtype = _NATIVE_KINDS[(how, storage)]
    validity, values = array.buffers()[:2]
    runs = len(starts)
    out, valid = np.empty(runs, dtype), np.empty(runs, np.uint8)
    _pairsort.reduce_runs(
        kind, values, validity if array.null_count else None, array.offset, len(array),
        order, starts, runs, out, valid,
    )  # fmt: skip
    mask = (valid == 0) if array.null_count else None
    if kind == 4:
        return pa.array(out.view(np.bool_), pa.bool_(), mask=mask)
    return pa.array(out, storage, mask=mask).cast(array.type)


def _ranks(ids: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Per row, the rank (int64) of its id among the distinct ids; and those ids, sorted."""
    encoded = pc.dictionary_encode(ids.combine_chunks())
    distinct = encoded.dictionary
    order = pc.sort_indices(distinct).to_numpy()
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[order] = np.arange(len(distinct), dtype=np.int64)
    return rank[encoded.indices.to_numpy()], distinct.take(pa.array(order))


def _reduce_runs(
    column: pa.ChunkedArray, starts: np.ndarray, ufunc: np.ufunc, order: np.ndarray | None = None
) -> pa.Array:
    """``ufunc`` over each run of ``column`` (taken in ``order`` when given) beginning at
    ``starts``, skipping nulls as Arrow's aggregates do (a run of nulls only gives null)."""
    array = column.combine_chunks()
    storage = pa.int64() if pa.types.is_timestamp(array.type) else array.type
    values = array.cast(storage)
    if values.null_count:
        info = np.iinfo(np.int64)  # nulls (only in the share timestamps) never win min or max
        fill = {np.minimum: info.max, np.maximum: info.min}.get(ufunc, 0)
        filled = pc.fill_null(values, fill).to_numpy()
        valid = values.is_valid().to_numpy(zero_copy_only=False)
        if order is not None:
            filled, valid = filled[order], valid[order]
        runs = ufunc.reduceat(filled, starts)
        valid = np.logical_or.reduceat(valid, starts)
        return pa.array(runs, storage, mask=~valid).cast(array.type)
    plain = values.to_numpy(zero_copy_only=False)
    if order is not None:
        plain = plain[order]
    return pa.array(ufunc.reduceat(plain, starts), storage).cast(array.type)


def finish_state(pairs: pa.Table, ordered: bool = False) -> pa.Table:
    """Final exposure-state columns (STATE_SCHEMA), sorted by (user_id, rumor_id); ``ordered``:
    the pairs are known to be in that order (reduce_pairs' output), so it is not checked."""
    if pairs.num_rows == 0:
        return STATE_SCHEMA.empty_table()
    mask = pa.array(np.zeros(pairs.num_rows, dtype=np.int16))
    for i, flag in enumerate(FLAGS):
        bit = pc.if_else(pairs[flag], pa.scalar(1 << i, pa.int16()), pa.scalar(0, pa.int16()))
        mask = pc.add(mask, bit)
    state = pa.table(
        {
            "user_id": pairs["user_id"],
            "rumor_id": pairs["rumor_id"],
            "exposures": pairs["exposures"],
            "first_ts": pairs["first_ts"],
            "last_ts": pairs["last_ts"],
            "strongest_action": pc.take(pa.array(ACTIONS), pairs["action_code"]),
            "surface_mask": mask,
            "shared": pc.equal(pairs["action_code"], SHARE),
            "first_share_ts": pairs["first_share_ts"],
            "last_share_ts": pairs["last_share_ts"],
            "tag_score": pairs["tag_score"],
        },
        schema=STATE_SCHEMA,
    )
    return state if ordered else sort_pairs(state)


def _split_users(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """``table`` split at a sampled user_id pivot: every user of the first part sorts before
    every user of the second, so each (user, rumor) pair lies wholly in one part."""
    n = table.num_rows
    sample = sorted(table["user_id"].take(pa.array(range(0, n, max(1, n // 1000)))).to_pylist())
    pivot = sample[len(sample) // 2]
    low = pc.fill_null(
        pc.less(table["user_id"], pa.scalar(pivot, table.schema.field("user_id").type)), False
    )
    return table.filter(low), table.filter(pc.invert(low))


def is_sorted(table: pa.Table) -> bool:
    """Whether ``table`` is already in (user_id, rumor_id) order, with no null keys."""
    users, rumors = table["user_id"], table["rumor_id"]
    if users.null_count or rumors.null_count:
        return False
    u0, u1, r0, r1 = users[:-1], users[1:], rumors[:-1], rumors[1:]
    ordered = pc.or_(pc.less(u0, u1), pc.and_(pc.equal(u0, u1), pc.less_equal(r0, r1)))
    return pc.all(ordered).as_py() is not False


def sort_pairs(table: pa.Table, workers: int = 2) -> pa.Table:
    """``table`` sorted by (user_id, rumor_id). A table already in order (as the join's merge
    leaves it) is returned as is. Arrow sorts on one thread, so a large table is split at a
    sampled user_id pivot and the two halves are sorted at once."""
    if table.num_rows < 2 or is_sorted(table):
        return table
    if table.num_rows < _PARALLEL_SORT_ROWS or workers < 2:
        return table.sort_by(SORT_KEYS)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return pa.concat_tables(pool.map(lambda half: half.sort_by(SORT_KEYS), _split_users(table)))
