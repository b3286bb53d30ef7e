"""The C pair aggregation (offline.join.pair_agg) gives exactly Arrow's group_by aggregates."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from offline.join import idfilter
from offline.join.aggregate import merge_surfaces, reduce_pairs
from offline.join.contracts import TS_TYPE, prepare_tags
from offline.join.pair_agg import aggregate_rows
from offline.join.tag_index import TagIndex
from tests.fixtures.ids import ADVERSARIAL, noise

needs_c = pytest.mark.skipif(idfilter._idscan is None, reason="offline.join._idscan is not built")


def _index(rng: np.random.Generator, items: int, tags: int, rumors: int) -> TagIndex:
    """Tags over ``items`` items, some items on several rumors."""
    table = pa.table(
        {
            "item_id": [f"i{k}" for k in rng.integers(0, items, tags)],
            "rumor_id": [f"r{k}" for k in rng.integers(0, rumors, tags)],
            "score": rng.random(tags),
            "source": rng.choice(["matched", "manual"], tags),
        }
    )
    return TagIndex.build(prepare_tags(table))


def _rows(rng: np.random.Generator, users: list[str], n: int) -> pa.Table:
    """Joined candidate rows: users drawn from ``users``, shares and every surface."""
    return pa.table(
        {
            "user_id": pa.array([users[i] for i in rng.integers(0, len(users), n)], pa.string()),
            "ts": pa.array(rng.integers(-(10**12), 10**15, n)).cast(TS_TYPE),
            "action_code": pa.array(rng.integers(0, 5, n).astype(np.int8)),
            "surface_code": pa.array(rng.integers(0, 6, n).astype(np.int8)),
        }
    )


def _same(rows: pa.Table, pos: np.ndarray, index: TagIndex) -> int:
    """Both paths on the same rows; returns the most rows any pair aggregated."""
    fast = aggregate_rows(rows, pos, index.codes)
    arrow = aggregate_rows(rows, pos, index.codes, native=False)
    assert reduce_pairs(fast.pairs).equals(reduce_pairs(arrow.pairs))
    assert fast.pairs.num_rows == arrow.pairs.num_rows  # each (user, rumor) once in both
    order = [("rumor_id", "ascending"), ("surface", "ascending")]
    surfaces = [merge_surfaces([p.surfaces]).sort_by(order) for p in (fast, arrow)]
    assert surfaces[0].equals(surfaces[1])
    return max(fast.pairs["exposures"].to_pylist(), default=0)


@needs_c
@pytest.mark.parametrize("seed", range(4))
def test_c_aggregation_equals_arrows_group_by(seed: int) -> None:
    rng = np.random.default_rng(seed)
    index = _index(rng, items=60, tags=120, rumors=12)
    assert index.extra.num_rows  # items on several rumors give extra joined rows
    # Long ids share their first bytes (past the group's inline copy); short ones collide less.
    long = [f"user-with-a-long-shared-prefix-{k}" for k in range(50)]
    users = ADVERSARIAL + noise(300, seed) + long
    users = [u for u in users if u]  # validation drops empty ids before the join
    n = int(rng.integers(2000, 6000))
    rows = _rows(rng, users, n)
    pairs = _same(rows, rng.integers(0, len(index.items), n).astype(np.int32), index)
    assert pairs > 1  # some pairs met more than once: a real reduction was checked


@needs_c
def test_c_aggregation_edge_cases() -> None:
    rng = np.random.default_rng(7)
    index = _index(rng, items=5, tags=8, rumors=3)
    one = _rows(rng, ["u"], 1)
    assert _same(one, np.zeros(1, np.int32), index) == 1
    many = _rows(rng, ["same-user"], 5000)  # one user, every row on the same item
    assert _same(many, np.zeros(5000, np.int32), index) == 5000
    sliced = _rows(rng, ["a", "bb", "ccc"], 300).slice(100, 150)  # offsets not starting at 0
    _same(sliced, rng.integers(0, len(index.items), 150).astype(np.int32), index)


@needs_c
def test_c_aggregation_refuses_bad_positions() -> None:
    index = _index(np.random.default_rng(1), items=5, tags=8, rumors=3)
    rows = _rows(np.random.default_rng(2), ["u1", "u2"], 10)
    with pytest.raises(IndexError):
        aggregate_rows(rows, np.full(10, len(index.items) + 5, np.int32), index.codes)
