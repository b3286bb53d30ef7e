"""The C merge of pair aggregates (offline.join.pair_merge) gives exactly the numpy table."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from offline.join import pair_merge
from offline.join.aggregate import reduce_pairs, reduce_pairs_numpy
from offline.join.contracts import FLAGS, PAIR_SCHEMA, TS_TYPE
from tests.fixtures.ids import ADVERSARIAL, noise

needs_c = pytest.mark.skipif(pair_merge._pairmerge is None, reason="_pairmerge is not built")


@pytest.fixture(autouse=True)
def c_merge_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C merge is off by default (decision 0059); these tests turn it on."""
    monkeypatch.setenv("DEBUNK_C_MERGE", "1")


def _pairs(rng: np.random.Generator, users: list[str], n: int, rumors: int) -> pa.Table:
    """n partial aggregates over ``users`` and ``rumors`` rumors: repeated pairs, shares on some."""
    ts = rng.integers(-(10**12), 10**15, n)
    share = rng.random(n) < 0.4
    columns = {
        "user_id": pa.array([users[i] for i in rng.integers(0, len(users), n)], pa.string()),
        "rumor_id": pa.array([f"r{k}" for k in rng.integers(0, rumors, n)], pa.string()),
        "exposures": pa.array(rng.integers(1, 9, n), pa.int64()),
        "first_ts": pa.array(ts).cast(TS_TYPE),
        "last_ts": pa.array(ts + rng.integers(0, 10**9, n)).cast(TS_TYPE),
        "action_code": pa.array(rng.integers(0, 5, n).astype(np.int8)),
        **{flag: pa.array(rng.random(n) < 0.3) for flag in FLAGS},
        "first_share_ts": pa.array(ts - 7, mask=~share).cast(TS_TYPE),
        "last_share_ts": pa.array(ts + 7, mask=~share).cast(TS_TYPE),
        "tag_score": pa.array(rng.random(n).astype(np.float32)),
    }
    return pa.table(columns, schema=PAIR_SCHEMA)


def _users(kind: str, n: int, seed: int) -> list[str]:
    """User ids of one shape: adversarial bytes, long shared prefixes, or short numbers."""
    if kind == "adversarial":
        return [u for u in ADVERSARIAL + noise(n, seed) if u]
    if kind == "tiny":  # at most 8 bytes past the shared prefix: one word per id
        ids = ["a", "a\0", "ab", "a\0b", "\0", "ü", *noise(n, seed)]
        return [u for u in ids if u and len(u.encode()) <= 8]
    if kind == "long":  # 16 shared bytes and more: the sort goes a level deeper
        return [f"user-0000000000-{k:09d}-{'x' * (k % 5)}" for k in range(n)]
    return [f"u{k}" for k in range(n)]


@needs_c
@pytest.mark.parametrize("kind", ["adversarial", "tiny", "long", "short"])
@pytest.mark.parametrize("seed", range(3))
def test_c_merge_equals_numpy(kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    users = _users(kind, 400, seed)
    pairs = _pairs(rng, users, 5000, rumors=30)
    chunked = pa.concat_tables([pairs.slice(0, 1234), pairs.slice(1234, 3000), pairs.slice(4234)])
    got = pair_merge.merge_native(chunked)
    assert got is not None
    want = reduce_pairs_numpy(pairs)
    assert got.equals(want)
    assert got.num_rows < pairs.num_rows  # repeated pairs were combined
    assert reduce_pairs(chunked).equals(want)


@needs_c
def test_c_merge_of_a_slice_and_of_nothing() -> None:
    rng = np.random.default_rng(7)
    pairs = _pairs(rng, _users("adversarial", 50, 7), 600, rumors=5)
    part = pairs.slice(111, 222)  # offsets that do not start at 0
    assert pair_merge.merge_native(part).equals(reduce_pairs_numpy(part.combine_chunks()))
    assert pair_merge.merge_native(pairs.slice(0, 0)).equals(PAIR_SCHEMA.empty_table())
    one = pairs.slice(5, 1)
    assert pair_merge.merge_native(one).equals(reduce_pairs_numpy(one))


@needs_c
def test_c_merge_leaves_what_it_does_not_take_to_numpy() -> None:
    rng = np.random.default_rng(3)
    pairs = _pairs(rng, _users("short", 40, 3), 300, rumors=4)
    scores = pairs["tag_score"].to_numpy().copy()
    scores[17] = np.nan
    nan = pairs.set_column(PAIR_SCHEMA.get_field_index("tag_score"), "tag_score", pa.array(scores))
    assert pair_merge.merge_native(nan) is None
    got, want = reduce_pairs(nan), reduce_pairs_numpy(nan)  # NaN != NaN for Arrow's equals
    assert got.drop_columns(["tag_score"]).equals(want.drop_columns(["tag_score"]))
    assert np.array_equal(got["tag_score"], want["tag_score"], equal_nan=True)
    exposures = pa.array([None, *pairs["exposures"].to_pylist()[1:]], pa.int64())
    gap = pairs.set_column(PAIR_SCHEMA.get_field_index("exposures"), "exposures", exposures)
    assert pair_merge.merge_native(gap) is None


@pytest.mark.parametrize("value", ["0", None])
def test_the_c_merge_is_off_unless_turned_on(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("DEBUNK_C_MERGE")
    else:
        monkeypatch.setenv("DEBUNK_C_MERGE", value)
    rng = np.random.default_rng(1)
    pairs = _pairs(rng, _users("short", 30, 1), 200, rumors=3)
    assert not pair_merge.available()
    assert pair_merge.merge_native(pairs) is None
    assert reduce_pairs(pairs).equals(reduce_pairs_numpy(pairs))
