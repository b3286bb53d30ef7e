"""The exposure join: per (user, rumor) counts, times, strongest action, surfaces, rejects."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from offline.join.contracts import STATE_SCHEMA
from offline.join.engine import join_exposures
from tests.fixtures.logs import by_pair, t, write_logs

TAGS = pa.table({"item_id": ["i1", "i2", "i3", "i3"], "rumor_id": ["rA", "rA", "rB", "rC"]})


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return write_logs(
        tmp_path / "logs",
        [
            ("u1", "i1", t(1, 8), "feed", "impression"),
            ("u1", "i2", t(2, 9), "group", "share"),
            ("u1", "i1", t(3, 7), "search", "click"),
            ("u2", "i3", t(2, 1), "comment", "like"),
            ("u2", "i9", t(2, 2), "feed", "share"),  # untagged item: not an exposure
            ("u3", "i9", t(1, 2), "feed", "impression"),
        ],
    )


def test_aggregates_per_user_and_rumor(logs: Path) -> None:
    state, summary = join_exposures(logs, TAGS)
    assert state.schema == STATE_SCHEMA
    pairs = by_pair(state)
    assert set(pairs) == {("u1", "rA"), ("u2", "rB"), ("u2", "rC")}
    a = pairs[("u1", "rA")]
    assert a["exposures"] == 3
    assert a["first_ts"] == t(1, 8) and a["last_ts"] == t(3, 7)
    assert a["strongest_action"] == "share" and a["shared"] is True
    assert a["surface_mask"] == 0b1011  # feed (1) | search (2) | group (8)
    assert summary.rows_read == 6 and summary.rows_kept == 4 and summary.pairs == 3


def test_an_item_tagged_to_two_rumors_counts_for_both(logs: Path) -> None:
    pairs = by_pair(join_exposures(logs, TAGS)[0])
    assert pairs[("u2", "rB")]["exposures"] == pairs[("u2", "rC")]["exposures"] == 1
    assert pairs[("u2", "rB")]["strongest_action"] == "like"
    assert pairs[("u2", "rB")]["shared"] is False


def test_dates_restrict_the_scan_to_those_partitions(logs: Path) -> None:
    state, summary = join_exposures(logs, TAGS, dates=["2026-10-01"])
    pairs = by_pair(state)
    assert set(pairs) == {("u1", "rA")}
    assert pairs[("u1", "rA")]["exposures"] == 1
    assert summary.partitions == 1 and summary.rows_read == 2


def test_output_is_sorted_by_user_then_rumor(logs: Path) -> None:
    state, _ = join_exposures(logs, TAGS)
    keys = list(zip(state["user_id"].to_pylist(), state["rumor_id"].to_pylist(), strict=True))
    assert keys == sorted(keys)


def test_bad_rows_are_counted_by_reason_and_do_not_stop_the_run(tmp_path: Path) -> None:
    logs = write_logs(
        tmp_path / "logs",
        [
            ("u1", "i1", t(1, 1), "feed", "impression"),
            ("", "i1", t(1, 2), "feed", "impression"),
            (None, "i1", t(1, 3), "feed", "impression"),
            ("u2", "i1", t(1, 4), "feed", "retweet"),
            ("u3", "i1", t(1, 5), "billboard", "click"),
            ("u4", None, t(1, 6), "feed", "click"),
        ],
    )
    state, summary = join_exposures(logs, TAGS)
    assert by_pair(state).keys() == {("u1", "rA")}
    assert summary.rows_rejected == {
        "null_or_empty_user_id": 2,
        "unknown_action": 1,
        "unknown_surface": 1,
        "null_or_empty_item_id": 1,
    }


def test_no_tagged_items_gives_an_empty_state(logs: Path) -> None:
    empty = pa.table({"item_id": pa.array([], pa.string()), "rumor_id": pa.array([], pa.string())})
    state, summary = join_exposures(logs, empty)
    assert state.num_rows == 0 and state.schema == STATE_SCHEMA
    assert summary.rows_read == 6


def test_the_join_equals_duckdbs_on_a_synthetic_world(small_world: Path) -> None:
    """Same pairs, counts, times, strongest action, surfaces and share times as an analyst's SQL."""
    import duckdb

    from offline.io.catalog import load_tags

    state, summary = join_exposures(
        small_world / "exposures", load_tags(small_world / "tagged_items.parquet")
    )
    expected = (
        duckdb.sql(
            f"""
        with t as (select distinct item_id, rumor_id
                   from read_parquet('{small_world}/tagged_items.parquet'))
        select e.user_id, t.rumor_id, count(*)::bigint as exposures,
               min(e.ts) as first_ts, max(e.ts) as last_ts,
               (['impression','click','like','comment','share'])[1 + max(
                   list_position(['impression','click','like','comment','share'], e.action) - 1)]
                   as strongest_action,
               bit_or(1 << (list_position(['feed','search','comment','group','push','other'],
                                          e.surface) - 1))::smallint as surface_mask,
               min(e.ts) filter (where e.action = 'share') as first_share_ts,
               max(e.ts) filter (where e.action = 'share') as last_share_ts
        from read_parquet('{small_world}/exposures/*/*.parquet') e join t using (item_id)
        group by 1, 2 order by 1, 2
        """
        )
        .arrow()
        .read_all()
    )
    got = state.select(expected.column_names)
    assert summary.pairs == expected.num_rows > 100
    for name in expected.column_names:
        assert got[name].to_pylist() == expected[name].to_pylist(), name


def test_small_batches_and_joins_give_the_same_state(
    logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Candidates screened batch by batch, joined in several calls and cut into user buckets
    aggregate the same."""
    import offline.join.local as ex
    from offline.join.aggregate import finish_state
    from offline.join.contracts import JoinSummary, prepare_tags

    whole, _ = join_exposures(logs, TAGS)
    monkeypatch.setattr(ex, "_JOIN_ROWS", 2)
    files = sorted(logs.glob("dt=*/*.parquet"))
    summary = JoinSummary()
    partial = ex.LocalEngine(batch_size=1).scan(files, prepare_tags(TAGS), summary)
    assert finish_state(partial.pairs).equals(whole)
    assert summary.rows_read == 6 and summary.rows_kept == 4


def test_sort_pairs_in_two_halves_equals_one_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parallel sort splits at a pivot; the result is the same order as one sort."""
    import random

    import offline.join.aggregate as ex

    rng = random.Random(3)
    users = [rng.choice(["u1", "u10", "u2", "ü", "u1\0", "a", "z9"]) + str(rng.randrange(50))
             for _ in range(3000)]  # fmt: skip
    table = pa.table({"user_id": users, "rumor_id": [rng.choice("rABC") for _ in users]})
    monkeypatch.setattr(ex, "_PARALLEL_SORT_ROWS", 10)
    got = ex.sort_pairs(table)
    assert got.to_pylist() == table.sort_by(ex.SORT_KEYS).to_pylist()


def _random_pairs(seed: int, n: int) -> pa.Table:
    """Partial pair aggregates with many repeated (user, rumor) keys and null share times."""
    import random

    from offline.join.contracts import FLAGS, PAIR_SCHEMA

    rng = random.Random(seed)
    users = [rng.choice(["u1", "u10", "u2", "ü", "u1\0", "a"]) + str(rng.randrange(40))
             for _ in range(n)]  # fmt: skip
    ts = [t(rng.randrange(1, 5), rng.randrange(24)) for _ in range(n)]
    share = [None if rng.random() < 0.7 else v for v in ts]
    columns = {
        "user_id": users,
        "rumor_id": [rng.choice(["rA", "rB", "rC"]) for _ in range(n)],
        "exposures": [rng.randrange(1, 4) for _ in range(n)],
        "first_ts": ts,
        "last_ts": ts,
        "action_code": [rng.randrange(4) for _ in range(n)],
        **{f: [rng.random() < 0.3 for _ in range(n)] for f in FLAGS},
        "first_share_ts": share,
        "last_share_ts": share,
        "tag_score": [rng.choice([1.0, 0.87, 0.5]) for _ in range(n)],
    }
    return pa.table(columns).cast(PAIR_SCHEMA)


@pytest.mark.parametrize("seed", range(3))
def test_sorted_merge_equals_hash_merge_then_sort(seed: int) -> None:
    import offline.join.aggregate as ex
    from offline.join.contracts import PAIR_SCHEMA

    pairs = _random_pairs(seed, 3000)
    expected = ex.merge_pairs([pairs]).sort_by(ex.SORT_KEYS)
    assert ex.merge_sorted(pairs).equals(expected)
    assert ex.merge_sorted(ex.merge_pairs([pairs])).equals(expected)  # no repeated keys
    assert ex.merge_sorted(pairs.slice(0, 0)).equals(PAIR_SCHEMA.empty_table())


def test_merge_in_a_pool_gives_sorted_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan's final merge, in two user ranges at once, equals one merge (and is sorted)."""
    from concurrent.futures import ThreadPoolExecutor

    import offline.join.aggregate as ex
    from offline.join.contracts import SURFACE_COUNT_SCHEMA, Partial

    monkeypatch.setattr(ex, "_PARALLEL_MERGE_ROWS", 10)
    partials = [Partial(p, SURFACE_COUNT_SCHEMA.empty_table())
                for p in (_random_pairs(7, 1000), _random_pairs(8, 2000))]  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        got = ex.merge(partials, pool).pairs
    assert got.equals(ex.merge_pairs([p.pairs for p in partials]).sort_by(ex.SORT_KEYS))
    assert ex.is_sorted(got) and ex.sort_pairs(got) is got


def test_sort_pairs_sorts_what_is_not_sorted() -> None:
    import offline.join.aggregate as ex

    table = pa.table({"user_id": ["u1", "u1", "u0"], "rumor_id": ["rB", "rA", "rC"]})
    assert not ex.is_sorted(table)
    assert not ex.is_sorted(pa.table({"user_id": ["u1", "u1"], "rumor_id": ["rB", "rA"]}))
    assert not ex.is_sorted(pa.table({"user_id": [None, "u1"], "rumor_id": ["rA", "rA"]}))
    assert ex.sort_pairs(table).to_pylist() == table.sort_by(ex.SORT_KEYS).to_pylist()


def test_the_duckdb_engine_without_duckdb_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from offline.join.engine import engine_named

    monkeypatch.setitem(sys.modules, "duckdb", None)  # what a missing package looks like
    with pytest.raises(RuntimeError, match=r"duckdb join engine needs the duckdb package"):
        engine_named("duckdb")


def test_debunk_exposures_gives_the_same_state_with_either_engine(
    small_world: Path, tmp_path: Path
) -> None:
    import json
    import subprocess
    import sys

    import pyarrow.parquet as pq

    def debunk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", *args],
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    inputs = ["--logs", str(small_world / "exposures"),
              "--tags", str(small_world / "tagged_items.parquet")]  # fmt: skip
    summaries = {}
    for engine in ("local", "duckdb"):
        done = debunk("exposures", *inputs, "--out", str(tmp_path / engine), "--engine", engine)
        assert done.returncode == 0, done.stderr
        summaries[engine] = json.loads(done.stdout)
    local, duck = (pq.read_table(tmp_path / e / "exposures.parquet") for e in ("local", "duckdb"))
    assert local.equals(duck) and local.num_rows == summaries["duckdb"]["pairs"] > 0
    assert summaries["local"]["rows_kept"] == summaries["duckdb"]["rows_kept"] > 0
    refused = debunk("exposures", *inputs, "--out", str(tmp_path / "x"), "--engine", "spork")
    assert refused.returncode == 2 and "invalid choice: 'spork'" in refused.stderr
