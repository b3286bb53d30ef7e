"""Training reads the state file streamed: the same confidence matrix, profile rows and prebunks
as from the table in memory, in user order or not, and with the state's edge cases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from domain.records import Debunk, Rumor
from domain.vocab import ACTIONS
from offline.join.contracts import STATE_SCHEMA
from offline.models.engagement import engagement, rows_of_users, state_rows
from offline.models.train import AtRiskConfig, _cap_per_rumor, train_at_risk

TS = datetime(2026, 10, 2, tzinfo=UTC)


def _state(n_users: int, seed: int, *, shuffle: bool = False) -> pa.Table:
    """A seeded state: each user 1-5 of 12 rumors, any action, sorted by (user, rumor)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for r in sorted(rng.choice(12, size=int(rng.integers(1, 6)), replace=False)):
            rows.append((f"u{u:04d}", f"r{r:02d}", int(rng.integers(1, 9)),
                         ACTIONS[int(rng.integers(0, len(ACTIONS)))]))  # fmt: skip
    if shuffle:
        rows = [rows[i] for i in rng.permutation(len(rows))]
    n = len(rows)
    return pa.table(
        {"user_id": [x[0] for x in rows], "rumor_id": [x[1] for x in rows],
         "exposures": [x[2] for x in rows], "first_ts": [TS] * n, "last_ts": [TS] * n,
         "strongest_action": [x[3] for x in rows], "surface_mask": [1] * n,
         "shared": [False] * n, "first_share_ts": [None] * n, "last_share_ts": [None] * n,
         "tag_score": [1.0] * n},
        schema=STATE_SCHEMA,
    )  # fmt: skip


def _file(table: pa.Table, path: Path, group: int) -> Path:
    pq.write_table(table, path, row_group_size=group)
    return path


def _reference(table: pa.Table, alpha: float) -> tuple[list, list, np.ndarray]:
    """The matrix as the code before 0061 built it: unique ids sorted, pandas-free here."""
    users = sorted(set(table["user_id"].to_pylist()))
    rumors = sorted(set(table["rumor_id"].to_pylist()))
    m = np.zeros((len(users), len(rumors)), np.float32)
    strength = {a: i for i, a in enumerate(ACTIONS)}
    for u, r, n, a in zip(*(table[c].to_pylist() for c in
                            ("user_id", "rumor_id", "exposures", "strongest_action")),
                          strict=True):  # fmt: skip
        m[users.index(u), rumors.index(r)] += np.float32(1.0) + np.float32(alpha) * (
            np.log1p(np.float32(n)) + np.float32(strength[a]) / np.float32(4.0)
        )
    return users, rumors, m


@pytest.mark.parametrize("group", [1, 7, 64, 10_000])  # a user's rows split across groups
def test_streamed_matrix_is_the_tables_matrix(tmp_path: Path, group: int) -> None:
    table = _state(150, seed=group)
    users, rumors, dense = _reference(table, 4.0)
    for source in (table, _file(table, tmp_path / "s.parquet", group)):
        e = engagement(source, 4.0)
        assert e.users.to_pylist() == users and e.rumors == rumors
        assert e.matrix.has_canonical_format
        assert np.allclose(e.matrix.toarray(), dense, rtol=1e-6)


def test_users_out_of_order_fall_back_to_the_whole_read(tmp_path: Path) -> None:
    table = _state(120, seed=3, shuffle=True)
    users, rumors, dense = _reference(table, 4.0)
    e = engagement(_file(table, tmp_path / "s.parquet", 50), 4.0)
    assert e.users.to_pylist() == users and e.rumors == rumors
    assert np.allclose(e.matrix.toarray(), dense, rtol=1e-6)


def test_a_user_out_of_order_across_groups_is_caught(tmp_path: Path) -> None:
    # each group sorted in itself, the second starting below the first's last user
    a, b = _state(30, seed=1), _state(30, seed=2)
    table = pa.concat_tables([a.slice(40), a.slice(0, 40), b])
    path = tmp_path / "s.parquet"
    pq.write_table(table, path, row_group_size=max(1, a.num_rows - 40))
    users, rumors, dense = _reference(table, 2.0)
    e = engagement(path, 2.0)
    assert e.users.to_pylist() == users and np.allclose(e.matrix.toarray(), dense, rtol=1e-6)


def test_empty_state_and_profile_rows(tmp_path: Path) -> None:
    empty = STATE_SCHEMA.empty_table()
    path = _file(empty, tmp_path / "e.parquet", 10)
    assert state_rows(path) == 0 and state_rows(None) == 0
    e = engagement(path, 4.0)
    assert len(e.users) == 0 and e.matrix.shape == (0, 0)
    cols = ["user_id", "rumor_id", "exposures", "strongest_action"]
    assert rows_of_users(path, ["u1"], cols).num_rows == 0
    table = _state(40, seed=5)
    picked = rows_of_users(_file(table, tmp_path / "s.parquet", 9), ["u0003", "u0031"], cols)
    expected = [r for r in table.select(cols).to_pylist() if r["user_id"] in ("u0003", "u0031")]
    assert picked.to_pylist() == expected


def test_prebunks_from_the_file_equal_the_tables(tmp_path: Path) -> None:
    table = _state(300, seed=9)
    rumors = [Rumor(f"r{i:02d}", "c", "epidemic", 3, "false", "confirmed") for i in range(12)]
    debunks = [Debunk(f"d{i}", (f"r{i:02d}",), "t", "u", "p", "official") for i in range(12)]
    config = AtRiskConfig(factors=3, max_per_rumor=40)
    from_table = train_at_risk(table, rumors, debunks, config)
    from_file = train_at_risk(_file(table, tmp_path / "s.parquet", 33), rumors, debunks, config)
    assert from_table[0] and from_file[0] == from_table[0]
    assert from_file[1]["pairs"] == from_table[1]["pairs"] == table.num_rows


def test_cap_per_rumor_keeps_the_best_users_of_each_rumor() -> None:
    u = np.array([0, 1, 2, 3, 4, 5, 6])
    r = np.array([0, 0, 0, 1, 1, 1, 2])
    s = np.array([0.5, 0.9, 0.9, 0.1, 0.2, 0.3, 0.7], np.float32)
    exposed = np.array([5, 1, 0])
    ku, kr, ks = _cap_per_rumor((u, r, s), exposed, cap=2)
    # rumor 0: cap 2 of {1: .9, 2: .9, 0: .5} -> users 1, 2 (tie by lower user); rumor 1:
    # its one exposed user -> the best, 5; rumor 2: no exposed user -> nobody
    assert sorted(zip(ku.tolist(), kr.tolist(), strict=True)) == [(1, 0), (2, 0), (5, 1)]
    assert ks.dtype == np.float32


def test_prebunk_table_reads_as_the_mapping_it_replaces() -> None:
    from offline.models.prebunk_table import PrebunkTable

    codes, scores = np.array([1, 0, 1], np.int32), np.array([0.9, 0.5, 0.25], np.float32)
    table = PrebunkTable(["a", "c"], np.array([0, 2, 3]), ["r0", "r1"], codes, scores)
    assert dict(table) == {"a": [("r1", 0.8999999761581421), ("r0", 0.5)], "c": [("r1", 0.25)]}
    assert table.get("b") is None and "c" in table and len(table) == 2 and table.pairs == 3
    with pytest.raises(KeyError):
        table["b"]
    with pytest.raises(ValueError, match="disagree"):
        PrebunkTable(["a"], np.array([0, 2]), ["r0"], np.array([0], np.int32), np.zeros(1))


def test_initial_factors_are_implicits_own_start() -> None:
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares

    from offline.models.train import _initial_factors

    config = AtRiskConfig(factors=5)
    m = sp.random(60, 9, density=0.3, format="csr", dtype=np.float32, random_state=1)
    als = AlternatingLeastSquares(factors=5, iterations=0, random_state=config.seed)
    als.fit(m, show_progress=False)  # no iteration: the factors are its random start
    users, items = _initial_factors(m.shape, config)
    assert np.array_equal(als.user_factors, users) and np.array_equal(als.item_factors, items)
