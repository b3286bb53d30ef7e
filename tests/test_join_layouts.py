"""The local join on every Parquet layout real writers produce: dictionary-encoded or plain ids,
dictionaries that fall back to plain pages, small row groups. Whichever way a file is read
(dictionary test per entry, or the C prefilter per row), the state, the rejects and the counts
must equal DuckDB's on the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from offline.io.contracts import EXPOSURE_SCHEMA
from offline.io.rejects import RejectWriter
from offline.join.contracts import JoinSummary, prepare_tags
from offline.join.engine import engine_named
from offline.join.layout import dictionary_ids
from offline.join.local import LocalEngine, _tasks
from tests.fixtures.logs import t

LAYOUTS: dict[str, dict[str, Any]] = {
    "pyarrow-default": {},
    "plain-ids": {"use_dictionary": ["surface", "action"], "compression": "zstd"},
    "dictionary-fallback": {"dictionary_pagesize_limit": 512, "row_group_size": 700},
    "small-row-groups": {"row_group_size": 128},
}


def _rows(n: int, seed: int) -> pa.Table:
    """Seeded log rows: 300 users, 200 items, a few bad rows of each kind."""
    rng = np.random.default_rng(seed)
    users = [f"u{i:05d}" for i in rng.integers(0, 300, n)]
    items = [f"item-{i}" for i in rng.integers(0, 200, n)]
    users[3], items[5], users[7] = "", "", None  # rejected: empty or null ids
    items[11] = None
    surfaces = np.array(["feed", "search", "comment", "group", "push", "other"])
    actions = np.array(["impression", "click", "like", "comment", "share"])
    surface = list(surfaces[rng.integers(0, 6, n)])
    surface[13] = "billboard"  # unknown surface
    base = t(1).timestamp()
    ts = [t(1).fromtimestamp(base + int(s), t(1).tzinfo) for s in rng.integers(0, 86_400, n)]
    return pa.table(
        {
            "user_id": pa.array(users, pa.string()),
            "item_id": pa.array(items, pa.string()),
            "ts": pa.array(ts, EXPOSURE_SCHEMA.field("ts").type),
            "surface": pa.array(surface, pa.string()),
            "action": pa.array(list(actions[rng.integers(0, 5, n)]), pa.string()),
        }
    )


TAGS = pa.table(
    {
        "item_id": [f"item-{i}" for i in range(0, 200, 7)] + ["item-14", "item-0"],
        "rumor_id": [f"r{i % 5}" for i in range(0, 200, 7)] + ["r9", "r8"],  # two carry 2 rumors
    }
)


def _write(tmp_path: Path, layout: str, table: pa.Table) -> Path:
    path = tmp_path / layout / "dt=2026-10-01" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path, **LAYOUTS[layout])
    return path


def _join(engine: Any, path: Path, out: Path) -> tuple[pa.Table, list[dict], JoinSummary]:
    summary = JoinSummary()
    writer = RejectWriter(out)
    partial = engine.scan([path], prepare_tags(TAGS), summary, sink=writer.add)
    writer.close()
    rejects = pq.read_table(out).to_pylist() if out.exists() else []
    key = [("reason", "ascending"), ("user_id", "ascending"), ("ts", "ascending")]
    rejects = sorted(rejects, key=lambda r: tuple(str(r.get(k)) for k, _ in key))
    return engine.merge_state([partial]).exposures, rejects, summary


def test_dictionary_ids_follow_the_footer(tmp_path: Path) -> None:
    table = _rows(3000, seed=1)
    assert dictionary_ids(str(_write(tmp_path, "pyarrow-default", table))) == (
        "user_id",
        "item_id",
    )
    assert dictionary_ids(str(_write(tmp_path, "plain-ids", table))) == ()
    assert dictionary_ids(str(tmp_path / "missing.parquet")) == ()
    # 200k distinct users outgrow the 1 MB dictionary page (plain pages follow, which Arrow
    # would have to hash to read as a dictionary); 50 items do not.
    many = pa.table(
        {
            "user_id": pa.array([f"user-{i:07d}" for i in range(200_000)]),
            "item_id": pa.array([f"item-{i % 50}" for i in range(200_000)]),
        }
    )
    path = tmp_path / "many-users.parquet"
    pq.write_table(many, path)
    assert pq.read_metadata(path).row_group(0).column(0).has_dictionary_page
    assert dictionary_ids(str(path)) == ("item_id",)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_local_join_equals_duckdb_on_every_layout(tmp_path: Path, layout: str) -> None:
    path = _write(tmp_path, layout, _rows(3000, seed=2))
    ours, our_rejects, our_summary = _join(LocalEngine(), path, tmp_path / "ours.parquet")
    theirs, their_rejects, their_summary = _join(
        engine_named("duckdb"), path, tmp_path / "duckdb.parquet"
    )
    assert ours.num_rows > 100
    assert ours.equals(theirs)
    assert our_rejects == their_rejects and len(our_rejects) == 5
    assert our_summary.as_dict() == their_summary.as_dict()
    assert {"r8", "r9"} <= set(ours["rumor_id"].to_pylist())  # the second rumors joined too


def test_rejects_of_a_dictionary_file_have_string_ids(tmp_path: Path) -> None:
    path = _write(tmp_path, "pyarrow-default", _rows(500, seed=3))
    assert "item_id" in dictionary_ids(str(path))
    summary = JoinSummary()
    got: list[pa.Table] = []
    LocalEngine().scan([path], prepare_tags(TAGS), summary, sink=lambda rows, *_: got.append(rows))
    assert got and all(r.schema.field("user_id").type == pa.string() for r in got)
    assert all(r.schema.field("item_id").type == pa.string() for r in got)


def test_row_groups_are_screened_apart_and_counted_once(tmp_path: Path) -> None:
    table = _rows(3000, seed=4)
    path = _write(tmp_path, "small-row-groups", table)
    assert pq.read_metadata(path).num_row_groups > 20
    summary = JoinSummary()
    LocalEngine(batch_size=100).scan([path], prepare_tags(TAGS), summary)
    assert summary.rows_read == 3000
    assert sum(summary.rows_rejected.values()) == 5


def test_small_row_groups_are_screened_in_tasks_of_a_batch(tmp_path: Path) -> None:
    path = str(_write(tmp_path, "small-row-groups", _rows(3000, seed=5)))
    groups = pq.read_metadata(path).num_row_groups  # 24 groups of 128 rows (the last 56)
    tasks = list(_tasks([(path, False)], None, task_rows=300))
    assert [g for _, _, task in tasks for g in task] == list(range(groups))
    assert all(len(task) == 2 for _, _, task in tasks[:-1])  # 256 rows each, a third is over
    assert list(_tasks([(path, False)], None, task_rows=100)) == [
        (path, False, [g]) for g in range(groups)
    ]
    # A backfill's named groups are grouped the same; a group the footer lacks is a task of its
    # own (the read names it), and so is a file whose footer cannot be read.
    assert list(_tasks([(path, False)], {path: [1, 2, 7]}, task_rows=300)) == [
        (path, False, [1, 2]),
        (path, False, [7]),
    ]
    assert list(_tasks([(path, False)], {path: [0, 99]}, task_rows=1 << 20)) == [
        (path, False, [0]),
        (path, False, [99]),
    ]
    assert list(_tasks([(path, False)], {path: []})) == [(path, False, [])]
    missing = str(tmp_path / "missing.parquet")
    assert list(_tasks([(missing, False)], None)) == [(missing, False, None)]


def test_grouped_tasks_give_the_state_of_one_group_a_task(tmp_path: Path) -> None:
    path = _write(tmp_path, "small-row-groups", _rows(3000, seed=6))
    states = []
    for batch in (100, 1 << 20):  # a group a task, then every group in one task
        summary = JoinSummary()
        engine = LocalEngine(batch_size=batch)
        partial = engine.scan([path], prepare_tags(TAGS), summary)
        states.append((engine.merge_state([partial]).exposures, summary.as_dict()))
    assert states[0][0].equals(states[1][0]) and states[0][1] == states[1][1]
