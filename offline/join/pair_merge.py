"""The C merge of partial pair aggregates (``offline.join._pairmerge``): each (user, rumor) once,
in (user_id, rumor_id) order, by one hash pass and a radix sort of the distinct pairs.

``reduce_pairs`` (offline.join.aggregate) calls it first when ``DEBUNK_C_MERGE=1`` (it is off
by default, see decision 0059); it answers None for what it does not take (no extension, off,
a null in a key or a non-share column, a NaN score, more than 2**27 rumors), and reduce_pairs
then takes its numpy path. Arrow sorts strings by
their bytes, so sorting by the user id's bytes and the rumor's rank among the sorted distinct
rumors gives the numpy path's order; a test checks the two tables are equal.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from offline.join.contracts import FLAGS, PAIR_SCHEMA, TS_TYPE

try:
    from offline.join import _pairmerge
except ImportError:  # built as an optional extension
    _pairmerge = None

_INT64 = np.iinfo(np.int64)
_MAX_RUMORS = 1 << 27


def available() -> bool:
    """Whether the C merge is built and turned on (``DEBUNK_C_MERGE=1``; off by default: it
    held ~120 MB more at the quick sweep's 10% point for no CPU saved, decision 0059)."""
    return _pairmerge is not None and os.environ.get("DEBUNK_C_MERGE", "0") == "1"


def merge_native(pairs: pa.Table) -> pa.Table | None:
    """``pairs`` (PAIR_SCHEMA) combined so each (user, rumor) appears once, sorted by (user_id,
    rumor_id); None when the C merge does not take this table."""
    if not available() or not _plain(pairs):
        return None
    if not pairs.num_rows:
        return PAIR_SCHEMA.empty_table()
    users = pairs["user_id"].combine_chunks()
    rumor_rank, rumors = _ranks(pairs["rumor_id"])
    if len(rumors) > _MAX_RUMORS:
        return None
    score = _numpy(pairs["tag_score"]).astype(np.float32, copy=False)
    if np.isnan(score).any():
        return None
    n = pairs.num_rows
    _, offsets, data = users.buffers()
    ends = np.frombuffer(offsets, np.int32, count=n + 1, offset=4 * users.offset)
    out_offsets = np.empty(n + 1, np.int32)
    out_data = np.empty(int(ends[-1]) - int(ends[0]), np.uint8)
    out = _outputs(n)
    groups = _pairmerge.merge_pairs(
        offsets, 4, users.offset, n, b"" if data is None else data,
        rumor_rank, _numpy(pairs["exposures"]), _ts(pairs["first_ts"]), _ts(pairs["last_ts"]),
        _numpy(pairs["action_code"]).astype(np.int8, copy=False), _mask(pairs),
        _ts(pairs["first_share_ts"], _INT64.max), _ts(pairs["last_share_ts"], _INT64.min),
        score, out_offsets, out_data, *out.values(),
    )  # fmt: skip
    merged = pa.Array.from_buffers(
        pa.string(), groups, [None, pa.py_buffer(out_offsets), pa.py_buffer(out_data)]
    )
    return _table(merged, rumors, {k: v[:groups] for k, v in out.items()})


def _plain(pairs: pa.Table) -> bool:
    """Whether only the share timestamps hold nulls (what the C merge reads)."""
    nullable = {"first_share_ts", "last_share_ts"}
    return all(pairs[name].null_count == 0 for name in PAIR_SCHEMA.names if name not in nullable)


def _ranks(ids: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Per row, the rank (int32) of its id among the distinct ids; and those ids, sorted."""
    encoded = pc.dictionary_encode(ids.combine_chunks())
    distinct = encoded.dictionary
    order = pc.sort_indices(distinct).to_numpy()
    rank = np.empty(len(distinct), dtype=np.int32)
    rank[order] = np.arange(len(distinct), dtype=np.int32)
    return rank[encoded.indices.to_numpy()], distinct.take(pa.array(order))


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A null-free column as one contiguous numpy array."""
    return np.ascontiguousarray(column.combine_chunks().to_numpy(zero_copy_only=False))


def _ts(column: pa.ChunkedArray, fill: int | None = None) -> np.ndarray:
    """A timestamp column as int64 microseconds (in place when it can be), nulls as ``fill``."""
    array = column.combine_chunks()
    values = np.frombuffer(array.buffers()[1], np.int64, count=len(array), offset=8 * array.offset)
    if fill is None or not array.null_count:
        return values
    return np.where(array.is_valid().to_numpy(zero_copy_only=False), values, fill)


def _mask(pairs: pa.Table) -> np.ndarray:
    """The surface flags of each row as one uint8 bit mask (bit i: FLAGS[i])."""
    mask = np.zeros(pairs.num_rows, np.uint8)
    for i, flag in enumerate(FLAGS):
        mask |= _numpy(pairs[flag]).astype(np.uint8) << np.uint8(i)
    return mask


def _outputs(n: int) -> dict[str, np.ndarray]:
    """The C merge's output arrays for up to n pairs, in its argument order."""
    return {
        "rumor": np.empty(n, np.int32),
        "exposures": np.empty(n, np.int64),
        "first_ts": np.empty(n, np.int64),
        "last_ts": np.empty(n, np.int64),
        "action_code": np.empty(n, np.int8),
        "mask": np.empty(n, np.uint8),
        "first_share_ts": np.empty(n, np.int64),
        "last_share_ts": np.empty(n, np.int64),
        "tag_score": np.empty(n, np.float32),
    }


def _table(merged_users: pa.Array, rumors: pa.Array, out: dict[str, np.ndarray]) -> pa.Table:
    """The merged pairs as a PAIR_SCHEMA table."""
    no_first = out["first_share_ts"] == _INT64.max
    no_last = out["last_share_ts"] == _INT64.min
    columns = {
        "user_id": merged_users,
        "rumor_id": rumors.take(pa.array(out["rumor"])),
        "exposures": pa.array(out["exposures"]),
        "first_ts": pa.array(out["first_ts"]).cast(TS_TYPE),
        "last_ts": pa.array(out["last_ts"]).cast(TS_TYPE),
        "action_code": pa.array(out["action_code"]),
        **{flag: pa.array((out["mask"] & (1 << i)) != 0) for i, flag in enumerate(FLAGS)},
        "first_share_ts": pa.array(out["first_share_ts"], mask=no_first).cast(TS_TYPE),
        "last_share_ts": pa.array(out["last_share_ts"], mask=no_last).cast(TS_TYPE),
        "tag_score": pa.array(out["tag_score"]),
    }
    return pa.table(columns, schema=PAIR_SCHEMA)
