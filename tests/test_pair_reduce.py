"""The C pair reduce (offline.join._pairsort) gives exactly numpy's reduce_pairs, on random
pairs with ties, nulls and ids built to break a prefix sort."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from offline.join import aggregate
from offline.join.aggregate import merge_sorted, reduce_pairs
from offline.join.contracts import FLAGS, PAIR_SCHEMA, TS_TYPE
from tests.fixtures.ids import ADVERSARIAL, noise

needs_c = pytest.mark.skipif(aggregate._pairsort is None, reason="_pairsort is not built")

# Ids past 16 bytes that share their first 16 (the C sort's comparison runs), ids that differ
# only by trailing NULs, and ids of one user range as a scan's bucket holds them.
IDS = [
    *ADVERSARIAL,
    *noise(60, 7),
    "",
    "u1",
    "u1\0",
    "u1\0\0",
    "0123456789abcdef",
    "0123456789abcdef\0",
    "0123456789abcdefA",
    "0123456789abcdefB",
    "0123456789abcdefAA",
    *[f"user-{k:012d}-tail-{k % 3}" for k in range(40)],
    *[f"u{k:08d}" for k in range(990_000, 990_200)],
]


def _nulls(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    return rng.random(n) < share


def _pairs(seed: int, n: int, nulls: float = 0.0) -> pa.Table:
    """Unreduced pair aggregates: ids drawn from IDS (so pairs repeat), share times mostly
    null, the int64 and timestamp columns null at the rate ``nulls`` (numpy's path
    reduces nulls in those), NaN scores among the rest."""
    rng = np.random.default_rng(seed)
    users = pa.array([IDS[k] for k in rng.integers(0, len(IDS), n)], pa.string())
    rumors = pa.array([f"r{k:03d}" for k in rng.integers(0, 9, n)], pa.string())
    ts = rng.integers(-(10**12), 10**15, n)
    score = rng.choice(np.array([1.0, 0.5, 0.25, np.nan], np.float32), n, p=[0.4, 0.3, 0.28, 0.02])
    columns = {
        "user_id": users,
        "rumor_id": rumors,
        "exposures": pa.array(rng.integers(1, 5, n), mask=_nulls(rng, n, nulls)),
        "first_ts": pa.array(ts, mask=_nulls(rng, n, nulls)).cast(TS_TYPE),
        "last_ts": pa.array(ts + rng.integers(0, 10**9, n), mask=_nulls(rng, n, nulls)).cast(
            TS_TYPE
        ),
        "action_code": pa.array(rng.integers(0, 5, n).astype(np.int8)),
        **{f: pa.array(rng.random(n) < 0.3) for f in FLAGS},
        "first_share_ts": pa.array(ts, mask=_nulls(rng, n, 0.7)).cast(TS_TYPE),
        "last_share_ts": pa.array(ts, mask=_nulls(rng, n, 0.7)).cast(TS_TYPE),
        "tag_score": pa.array(score),
    }
    return pa.table(columns, schema=PAIR_SCHEMA)


def _same(a: pa.Table, b: pa.Table) -> bool:
    """Equal tables, a NaN score equal to a NaN (Arrow's equals says NaN differs)."""
    scores = [t["tag_score"].to_numpy() for t in (a, b)]
    rest = [t.drop_columns(["tag_score"]) for t in (a, b)]
    same_scores = len(scores[0]) == len(scores[1]) and np.array_equal(*scores, equal_nan=True)
    return rest[0].equals(rest[1]) and same_scores


@needs_c
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("nulls", [0.0, 0.2])
def test_c_reduce_equals_numpys(seed: int, nulls: float) -> None:
    pairs = _pairs(seed, 4000, nulls)
    native = reduce_pairs(pairs)
    assert _same(native, reduce_pairs(pairs, native=False))
    assert native.num_rows < pairs.num_rows  # there were ties to reduce
    users = native["user_id"].to_pylist()
    keys = [(u.encode(), r) for u, r in zip(users, native["rumor_id"].to_pylist(), strict=True)]
    assert keys == sorted(set(keys))  # byte order of the ids, each pair once


@needs_c
def test_c_reduce_reads_chunked_and_sliced_columns() -> None:
    pairs = _pairs(11, 3000, 0.1)
    pieces = pa.concat_tables([pairs.slice(0, 1234), pairs.slice(1234, 10), pairs.slice(1244)])
    sliced = pairs.slice(517)
    assert _same(reduce_pairs(pieces), reduce_pairs(pairs, native=False))
    assert _same(reduce_pairs(sliced), reduce_pairs(sliced, native=False))


@needs_c
def test_c_reduce_of_distinct_pairs_is_a_sort() -> None:
    pairs = reduce_pairs(_pairs(3, 2000), native=False)  # each pair once already
    shuffled = pairs.take(pa.array(np.random.default_rng(3).permutation(pairs.num_rows)))
    assert _same(reduce_pairs(shuffled), pairs)
    assert _same(reduce_pairs(pairs.slice(0, 1)), pairs.slice(0, 1))
    assert reduce_pairs(pairs.slice(0, 0)).equals(PAIR_SCHEMA.empty_table())


@needs_c
def test_c_reduce_equals_the_sorted_merge_without_nan() -> None:
    pairs = _pairs(5, 3000)
    pairs = pairs.set_column(
        pairs.schema.get_field_index("tag_score"),
        "tag_score",
        pa.array(np.full(pairs.num_rows, 0.5, np.float32)),
    )
    assert reduce_pairs(pairs).equals(merge_sorted(pairs))


@needs_c
def test_bad_arguments_raise_instead_of_reading_past_buffers() -> None:
    sort = aggregate._pairsort
    order, starts = np.zeros(4, np.int64), np.zeros(4, np.int64)
    offsets = np.array([0, 1, 2], np.int32)
    with pytest.raises(ValueError):
        sort.pair_order(offsets, 0, 4, b"ab", np.zeros(4, np.uint32), order, starts)
    with pytest.raises(ValueError):  # a rank past 2**27
        sort.pair_order(offsets, 0, 2, b"ab", np.array([0, 1 << 27], np.uint32), order, starts)
    values, out, valid = np.zeros(2, np.int64), np.zeros(2, np.int64), np.zeros(2, np.uint8)
    bad_order = np.array([0, 5], np.int64)
    with pytest.raises(ValueError):
        sort.reduce_runs(0, values, None, 0, 2, bad_order, np.array([0, 1]), 2, out, valid)
    with pytest.raises(ValueError):
        sort.reduce_runs(9, values, None, 0, 2, np.array([0, 1]), np.array([0, 1]), 2, out, valid)


@needs_c
def test_run_reduces_skip_nulls_of_every_kind() -> None:
    order = np.array([3, 0, 2, 1, 4], np.int64)  # runs: rows {3, 0}, {2, 1}, {4}
    starts = np.array([0, 2, 4], np.int64)
    columns = [
        (pa.array([5, None, 7, 1, None], pa.int64()), "sum", [6, 7, None]),
        (pa.array([5, None, 7, 1, None], pa.int64()), "min", [1, 7, None]),
        (pa.array([5, None, 7, 1, None], pa.int64()), "max", [5, 7, None]),
        (pa.array([2, 4, None, None, 3], pa.int8()), "max", [2, 4, 3]),
        (pa.array([False, True, None, False, None], pa.bool_()), "any", [False, True, None]),
        (pa.array([0.5, None, np.nan, 0.25, 1.0], pa.float32()), "max", [0.5, np.nan, 1.0]),
    ]
    for column, how, want in columns:
        got = aggregate._native_runs(pa.chunked_array([column]), how, order, starts).to_pylist()
        assert [g if g == g else "nan" for g in got] == [w if w == w else "nan" for w in want]
        sliced = pa.concat_arrays([column.slice(0, 1), column]).slice(1)  # an offset of 1
        again = aggregate._native_runs(pa.chunked_array([sliced]), how, order, starts)
        assert [g if g == g else "nan" for g in again.to_pylist()] == [
            w if w == w else "nan" for w in want
        ]
