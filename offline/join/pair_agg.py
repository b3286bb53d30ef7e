"""Per-(user, rumor) partial aggregates of the rows on tagged items, grouped on integer rumor codes
in one C pass (``offline.join._idscan.aggregate_pairs``).

Arrow's hash ``group_by`` on the two string keys with the 13 aggregates cost ~340 ns a joined
row, which dominated the join when 5-10% of the rows are on tagged items. Here each row carries
its item's position in the TagIndex; the position gives the rumor as an int (so the items tagged
to several rumors are extra rows of int codes, not an Arrow join), and one hash pass over (user
id bytes, rumor code) updates every aggregate of the row's group in place. Without the C
extension the same rows go through Arrow's group_by (``aggregate_hits``); a test checks that
both give the same aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from domain.vocab import SURFACES
from offline.join.aggregate import aggregate_hits
from offline.join.buckets import BucketedPartial, bucket_of
from offline.join.contracts import FLAGS, PAIR_SCHEMA, SHARE, SURFACE_COUNT_SCHEMA, TS_TYPE, Partial
from offline.join.idfilter import _idscan, _offset_width

_NO_SHARE_MIN = np.iinfo(np.int64).max  # what the C pass leaves in first_share for no share
_SURFACE_NAMES = pa.array(SURFACES)


@dataclass(frozen=True)
class RumorCodes:
    """The tagged items' rumors as int codes (ranks in ``rumors``), by item position: the first
    rumor and its tag score, and the further rumors of items tagged to several."""

    rumors: pa.Array  # distinct rumor ids, sorted
    first: np.ndarray  # int32 code of each item's first rumor
    score: np.ndarray  # float32 tag score of that tag
    extra_start: np.ndarray  # int64: each item's further rumors are extra_*[start : start + count]
    extra_count: np.ndarray
    extra_rumor: np.ndarray  # int32 codes
    extra_score: np.ndarray  # float32

    @classmethod
    def build(
        cls, first_rumor: pa.Array, first_score: pa.Array, extra_pos: np.ndarray, extra: pa.Table
    ) -> RumorCodes:
        """From each item's first rumor and score, and the further (item position, rumor_id,
        tag_score) tags, sorted by item position."""
        rumors = pc.unique(pa.concat_arrays([first_rumor, extra["rumor_id"].combine_chunks()]))
        rumors = rumors.sort()
        count = np.bincount(extra_pos, minlength=len(first_rumor)).astype(np.int64)
        return cls(
            rumors,
            _codes(first_rumor, rumors),
            first_score.to_numpy(zero_copy_only=False).astype(np.float32),
            np.cumsum(count) - count,
            count,
            _codes(extra["rumor_id"].combine_chunks(), rumors),
            extra["tag_score"].to_numpy().astype(np.float32),
        )


def _codes(ids: pa.Array, rumors: pa.Array) -> np.ndarray:
    """Each id's rank in the sorted distinct ``rumors`` (all are there), as int32."""
    if not len(ids):
        return np.zeros(0, np.int32)
    return pc.index_in(ids, value_set=rumors).to_numpy().astype(np.int32)


def aggregate_rows(
    rows: pa.Table,
    tag_pos: np.ndarray,
    index: RumorCodes,
    *,
    native: bool = True,
    pivots: np.ndarray | None = None,
) -> Partial:
    """Aggregates of ``rows`` (candidate columns: user_id, ts, action_code, surface_code; no null
    user ids) on the tagged items at ``tag_pos`` (each row's item position in the TagIndex), one
    output row per (user, rumor), in no particular order; with ``pivots`` (UserBuckets'), in
    user-bucket order on the C path (the groups' numpy columns gathered in that order before
    they become Arrow columns). ``native`` False takes Arrow's path."""
    row, rumor, score = _expanded(np.asarray(tag_pos, dtype=np.int64), index)
    users = rows["user_id"].combine_chunks()
    if _idscan is None or not native or users.null_count or not pa.types.is_string(users.type):
        return aggregate_hits(_joined(rows, row, rumor, score, index))
    ts = _int64(rows["ts"])
    action = _int8(rows["action_code"])
    surface = _int8(rows["surface_code"])
    m = len(row)
    group_of = np.empty(m, np.int64)
    count, first_ts, last_ts = (np.empty(m, np.int64) for _ in range(3))
    first_share, last_share = np.empty(m, np.int64), np.empty(m, np.int64)
    max_action, mask, max_score = (
        np.empty(m, np.int8),
        np.empty(m, np.uint8),
        np.empty(m, np.float32),
    )
    _, offsets, data = users.buffers()
    groups = _idscan.aggregate_pairs(
        offsets, _offset_width(users.type), users.offset, len(users),
        b"" if data is None else data, row, rumor, score, ts, action, surface, SHARE,
        group_of, count, first_ts, last_ts, max_action, mask, first_share, last_share, max_score,
    )  # fmt: skip
    take: np.ndarray | slice = slice(0, groups)
    ends = None
    if pivots is not None:  # the groups in bucket order: numpy gathers
        bucket = bucket_of(users, pivots, row[group_of[:groups]])
        bucket = bucket.astype(np.int16 if len(pivots) < 1 << 15 else np.int64)
        take = np.argsort(bucket, kind="stable")  # a radix sort, on 16-bit keys
        ends = np.cumsum(np.bincount(bucket, minlength=len(pivots) + 1))
    opened = group_of[take]
    mask = mask[take]
    no_share = first_share[take] == _NO_SHARE_MIN
    columns = {
        "user_id": users.take(pa.array(row[opened])),
        "rumor_id": index.rumors.take(pa.array(rumor[opened])),
        "exposures": pa.array(count[take]),
        "first_ts": _timestamps(first_ts[take]),
        "last_ts": _timestamps(last_ts[take]),
        "action_code": pa.array(max_action[take]),
        **{flag: pa.array((mask & (1 << i)) != 0) for i, flag in enumerate(FLAGS)},
        "first_share_ts": _timestamps(first_share[take], no_share),
        "last_share_ts": _timestamps(last_share[take], no_share),
        "tag_score": pa.array(max_score[take]),
    }
    pairs = pa.table(columns, schema=PAIR_SCHEMA)
    surfaces = _surface_counts(rumor, surface[row], index)
    if ends is None:
        return Partial(pairs, surfaces)
    return BucketedPartial(pairs, surfaces, ends)


def _expanded(tag_pos: np.ndarray, index: RumorCodes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, rumor code, tag score) per joined row: each row once with its item's first rumor,
    then once more for each further rumor of the (few) items tagged to several."""
    row = np.arange(len(tag_pos), dtype=np.int64)
    rumor = index.first[tag_pos]
    score = index.score[tag_pos]
    if not len(index.extra_rumor):
        return row, rumor, score
    more = index.extra_count[tag_pos]
    twice = np.flatnonzero(more)
    if not len(twice):
        return row, rumor, score
    per = more[twice]
    starts = np.repeat(index.extra_start[tag_pos[twice]] - np.cumsum(per) + per, per)
    at = starts + np.arange(int(per.sum()))
    return (
        np.concatenate([row, np.repeat(twice, per)]),
        np.concatenate([rumor, index.extra_rumor[at]]),
        np.concatenate([score, index.extra_score[at]]),
    )


def _joined(
    rows: pa.Table, row: np.ndarray, rumor: np.ndarray, score: np.ndarray, index: RumorCodes
) -> pa.Table:
    """The joined rows as a table with rumor_id and tag_score, for Arrow's aggregation."""
    joined = rows.select(["user_id", "ts", "action_code", "surface_code"]).take(pa.array(row))
    joined = joined.append_column("rumor_id", index.rumors.take(pa.array(rumor)))
    return joined.append_column("tag_score", pa.array(score, pa.float32()))


def _surface_counts(rumor: np.ndarray, surface: np.ndarray, index: RumorCodes) -> pa.Table:
    """Joined rows per (rumor, surface) that occur, as SURFACE_COUNT_SCHEMA rows."""
    width = len(SURFACES)
    counts = np.bincount(
        rumor.astype(np.int64) * width + surface, minlength=len(index.rumors) * width
    )
    seen = np.flatnonzero(counts)
    return pa.table(
        {
            "rumor_id": index.rumors.take(pa.array(seen // width)),
            "surface": _SURFACE_NAMES.take(pa.array(seen % width)),
            "exposures": pa.array(counts[seen], pa.int64()),
        },
        schema=SURFACE_COUNT_SCHEMA,
    )


def _int64(column: pa.ChunkedArray) -> np.ndarray:
    """A non-null timestamp column's values as int64 microseconds."""
    return pc.cast(column.combine_chunks(), pa.int64()).to_numpy()


def _int8(column: pa.ChunkedArray) -> np.ndarray:
    """A non-null int8 column as numpy."""
    return column.combine_chunks().to_numpy()


def _timestamps(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """int64 microseconds as UTC timestamps, null where ``null`` is set."""
    return pa.array(values, pa.int64(), mask=null).cast(TS_TYPE)
