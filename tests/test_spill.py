"""The local engine under a tiny memory budget: the pair state spills in user-range partitions,
and every output (the join's file, the nightly's exposures and audience) is the same, byte for
byte, as the unbounded in-memory run's and row for row as DuckDB's; spills are removed on
success and on failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli.engines import DEFAULT_MEMORY_MB as CLI_DEFAULT
from offline.io.contracts import EXPOSURE_SCHEMA
from offline.io.parquet import write_parquet_atomic
from offline.join.aggregate import reduce_pairs
from offline.join.buckets import UserBuckets, user_prefixes
from offline.join.contracts import JoinSummary, Partial, prepare_tags
from offline.join.engine import engine_named, join_exposures, write_exposures
from offline.join.fold import SpilledPartial, pair_chunks
from offline.join.local import DEFAULT_MEMORY_MB, LocalEngine
from offline.nightly.state import update_state
from tests.fixtures.logs import t

DAYS = 3
TINY_MB = 0.5  # ~87 KB of held pairs: a few thousand pairs per run


def _day(rng: np.random.Generator, day: int, n: int) -> pa.Table:
    """Seeded rows of one day: 4,000 users (skewed), 600 items, every surface and action."""
    heavy = np.minimum(rng.zipf(1.5, n), 4000)
    users = np.where(rng.random(n) < 0.8, rng.integers(0, 4000, n), heavy)
    items = rng.integers(0, 600, n)
    secs = np.sort(rng.integers(0, 86_400, n))
    ts = (int(t(day).timestamp()) + secs) * 1_000_000
    surfaces = np.array(["feed", "search", "comment", "group", "push", "other"])
    actions = np.array(["impression", "click", "like", "comment", "share"])
    return pa.table(
        {
            "user_id": pa.array([f"u{u:05d}" for u in users], pa.string()),
            "item_id": pa.array([f"i{i}" for i in items], pa.string()),
            "ts": pa.array(ts, pa.int64()).cast(EXPOSURE_SCHEMA.field("ts").type),
            "surface": pa.array(surfaces[rng.integers(0, 6, n)], pa.string()),
            "action": pa.array(actions[rng.integers(0, 5, n)], pa.string()),
        }
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    """Logs of DAYS days (two files a day) and tags on a third of the items (some on two
    rumors)."""
    root = tmp_path_factory.mktemp("spill-world")
    rng = np.random.default_rng(21)
    for day in range(1, DAYS + 1):
        table = _day(rng, day, 40_000)
        folder = root / "logs" / f"dt={t(day).date().isoformat()}"
        folder.mkdir(parents=True)
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), folder / "part-0.parquet", row_group_size=5000)
        pq.write_table(table.slice(half), folder / "part-1.parquet", row_group_size=5000)
    items = [f"i{i}" for i in range(0, 600, 3)]
    rumors = [f"r{i % 40:02d}" for i in range(len(items))]
    items += ["i3", "i30"]
    rumors += ["r99", "r98"]
    return root / "logs", pa.table({"item_id": items, "rumor_id": rumors})


def _no_spill_left(folder: Path) -> None:
    assert not list(folder.glob(".spill-*")), list(folder.iterdir())


def test_the_cli_default_budget_is_the_engines() -> None:
    assert CLI_DEFAULT == DEFAULT_MEMORY_MB


def test_a_tiny_budget_spills_and_the_join_file_is_byte_identical(
    world: tuple[Path, pa.Table], tmp_path: Path
) -> None:
    logs, tags = world
    work = tmp_path / "work"
    tiny = LocalEngine(memory_mb=TINY_MB, work_dir=work, batch_size=4096)
    _, files = tiny.log_files(logs)
    partial = tiny.scan(files, prepare_tags(tags), JoinSummary())
    assert isinstance(partial, SpilledPartial) and partial.runs is not None
    assert len(partial.runs.files) >= 3  # several buckets spilled, merged a group at a time
    assert len(partial.runs.groups(tiny.spill_limit or 0)) >= 3
    partial.close()
    _no_spill_left(work)

    unbounded, _ = join_exposures(logs, tags, engine=LocalEngine(memory_mb=None))
    assert unbounded.num_rows > 15_000
    want = write_parquet_atomic(unbounded, tmp_path / "want.parquet").read_bytes()
    summary = write_exposures(logs, tags, tmp_path / "got.parquet", engine=tiny)
    assert summary.pairs == unbounded.num_rows
    assert (tmp_path / "got.parquet").read_bytes() == want
    _no_spill_left(work)
    again = write_exposures(logs, tags, tmp_path / "again.parquet", engine=tiny)
    assert again.pairs == summary.pairs
    assert (tmp_path / "again.parquet").read_bytes() == want  # a rerun gives the same file

    in_memory, _ = join_exposures(logs, tags, engine=tiny)
    assert in_memory.equals(unbounded)
    duck, _ = join_exposures(logs, tags, engine=engine_named("duckdb"))
    assert duck.to_pylist() == unbounded.to_pylist()
    _no_spill_left(work)


def test_a_scan_that_never_spilled_streams_its_buckets_into_the_same_file(
    world: tuple[Path, pa.Table], tmp_path: Path
) -> None:
    """write_exposures hands an unspilled scan's buckets over unreduced (scan_state): they are
    reduced in several groups, nothing is written to disk, and the file is the eager one's,
    under the default budget and unbounded alike."""
    logs, tags = world
    unbounded, _ = join_exposures(logs, tags, engine=LocalEngine(memory_mb=None))
    want = write_parquet_atomic(unbounded, tmp_path / "want.parquet").read_bytes()
    for name, engine in (
        ("default", LocalEngine(work_dir=tmp_path / "work", batch_size=4096)),
        ("unbounded", LocalEngine(memory_mb=None, work_dir=tmp_path / "work", batch_size=4096)),
    ):
        _, files = engine.log_files(logs)
        with engine.scan_state(files, prepare_tags(tags), JoinSummary()) as state:
            (partial,) = state.spilled
            assert isinstance(partial, SpilledPartial) and isinstance(partial.runs, UserBuckets)
            assert not partial.runs and partial.runs.held  # nothing spilled, every pair held
            limit = partial.limit
            size = min(limit // 2, partial.runs.group_bytes or limit)
            assert len(partial.runs.groups(size)) >= 4, name  # streamed in several groups
            chunks = list(state.chunks())
        assert pa.concat_tables(chunks).equals(unbounded), name
        summary = write_exposures(logs, tags, tmp_path / f"{name}.parquet", engine=engine)
        assert summary.pairs == unbounded.num_rows
        assert (tmp_path / f"{name}.parquet").read_bytes() == want, name
        _no_spill_left(tmp_path / "work")


def test_the_nightly_state_under_a_tiny_budget_is_byte_identical(
    world: tuple[Path, pa.Table], tmp_path: Path
) -> None:
    """Night after night (a late tag is back-filled): exposures and audience files equal the
    unbounded engine's and hold DuckDB's rows; no spill is left in the state folder."""
    logs, tags = world
    more = pa.concat_tables([tags, pa.table({"item_id": ["i1", "i2"], "rumor_id": ["r50"] * 2})])
    engines = {
        "tiny": LocalEngine(memory_mb=TINY_MB, batch_size=4096),
        "unbounded": LocalEngine(memory_mb=None),
        "duckdb": engine_named("duckdb"),
    }
    for run_date, tag_set in ((date(2026, 10, 2), tags), (date(2026, 10, 3), more)):
        outs = {}
        for name, engine in engines.items():
            state = tmp_path / name
            run = update_state(logs, tag_set, state, run_date, lookback_days=3, engine=engine)
            outs[name] = run
            _no_spill_left(state)
        tiny, unbounded = outs["tiny"], outs["unbounded"]
        assert tiny.summary["pairs"] == unbounded.summary["pairs"] > 10_000
        for kind in ("exposures", "audience"):
            got = getattr(tiny, kind).read_bytes()
            assert got == getattr(unbounded, kind).read_bytes(), kind
            duck = pq.read_table(getattr(outs["duckdb"], kind)).to_pylist()
            assert pq.read_table(getattr(tiny, kind)).to_pylist() == duck, kind
    rerun = update_state(logs, more, tmp_path / "tiny", date(2026, 10, 3), lookback_days=3,
                         engine=engines["tiny"])  # fmt: skip
    assert rerun.exposures.read_bytes() == outs["tiny"].exposures.read_bytes()


class _Boom(RuntimeError):
    pass


def test_a_failing_scan_removes_its_spill(world: tuple[Path, pa.Table], tmp_path: Path) -> None:
    logs, tags = world
    work = tmp_path / "work"
    tiny = LocalEngine(memory_mb=TINY_MB, work_dir=work, batch_size=4096)
    _, files = tiny.log_files(logs)
    seen = {"rows": 0, "spilled": False}

    def boom(rows: int) -> None:
        seen["rows"] += rows
        seen["spilled"] = seen["spilled"] or bool(list(work.glob(".spill-*/*.arrow")))
        if seen["rows"] > 100_000:
            raise _Boom("disk gone")

    with pytest.raises(_Boom):
        tiny.scan(files, prepare_tags(tags), JoinSummary(), on_batch=boom)
    assert seen["spilled"]  # the failure came after spills were written
    _no_spill_left(work)


def test_a_failing_merge_removes_its_spill(world: tuple[Path, pa.Table], tmp_path: Path) -> None:
    logs, tags = world
    work = tmp_path / "work"
    tiny = LocalEngine(memory_mb=TINY_MB, work_dir=work, batch_size=4096)

    def scans() -> list[Partial]:
        partials = []
        for dt in tiny.log_partitions(logs):
            _, files = tiny.log_files(logs, [dt])
            partials.append(tiny.scan(files, prepare_tags(tags), JoinSummary()))
        assert all(isinstance(p, SpilledPartial) for p in partials)
        return partials

    def failing() -> Iterator[Partial]:
        yield from scans()
        raise _Boom("unreadable part file")

    with pytest.raises(_Boom):
        tiny.merge_stream(failing())
    _no_spill_left(work)
    with pytest.raises(_Boom), tiny.merge_stream(scans()) as state:
        for _ in state.chunks():
            raise _Boom("writer failed")
    _no_spill_left(work)


def test_state_counts_read_group_by_group_match_the_whole_table(
    world: tuple[Path, pa.Table], tmp_path: Path
) -> None:
    """Users straddling row groups are counted once (the guard's shrink check)."""
    from offline.nightly.guards import state_counts

    logs, tags = world
    state, _ = join_exposures(logs, tags, engine=LocalEngine(memory_mb=None))
    path = tmp_path / "state.parquet"
    pq.write_table(state, path, row_group_size=997)  # many groups, users cut between them
    assert pq.ParquetFile(path).num_row_groups > 10
    users = len(set(state["user_id"].to_pylist()))
    assert state_counts(path) == {"users": users, "pairs": state.num_rows}


def test_one_partial_in_memory_is_the_state_without_a_spill(
    world: tuple[Path, pa.Table], tmp_path: Path
) -> None:
    """A scan that stayed in memory is folded as it is, even over the limit: no spill."""
    logs, tags = world
    work = tmp_path / "work"
    unbounded = LocalEngine(memory_mb=None, work_dir=work)
    _, files = unbounded.log_files(logs)
    partial = unbounded.scan(files, prepare_tags(tags), JoinSummary())
    assert not isinstance(partial, SpilledPartial)
    tiny = LocalEngine(memory_mb=TINY_MB, work_dir=work)
    assert partial.pairs.nbytes > tiny.spill_limit  # over the budget: it used to be spilled
    want, _ = join_exposures(logs, tags, engine=LocalEngine(memory_mb=None))
    with tiny.merge_stream([partial]) as state:
        assert state.runs is None and not state.spilled
        got = pa.concat_tables(list(state.chunks()))
        _no_spill_left(work)
    assert got.equals(want)


def test_a_scan_holds_a_third_of_the_budget_and_merges_in_sixths(
    world: tuple[Path, pa.Table], tmp_path: Path
) -> None:
    """Pairs over the fold's sixth but under the scan's third stay in memory (decision 0063) and
    the file is the unbounded one; a scan that spills merges its ranges in groups of a sixth."""
    logs, tags = world
    work = tmp_path / "work"
    unbounded = LocalEngine(memory_mb=None, work_dir=work)
    _, files = unbounded.log_files(logs)
    pairs = unbounded.scan(files, prepare_tags(tags), JoinSummary()).pairs.nbytes
    engine = LocalEngine(memory_mb=4 * pairs / (1 << 20), work_dir=work)
    assert engine.spill_limit is not None and engine.scan_limit is not None
    assert engine.spill_limit < pairs < engine.scan_limit
    partial = engine.scan(files, prepare_tags(tags), JoinSummary())
    assert not isinstance(partial, SpilledPartial)
    _no_spill_left(work)
    want, _ = join_exposures(logs, tags, engine=LocalEngine(memory_mb=None))
    write_parquet_atomic(want, tmp_path / "want.parquet")
    write_exposures(logs, tags, tmp_path / "got.parquet", engine=engine)
    assert (tmp_path / "got.parquet").read_bytes() == (tmp_path / "want.parquet").read_bytes()

    tiny = LocalEngine(memory_mb=TINY_MB, work_dir=work, batch_size=4096)
    spilled = tiny.scan(files, prepare_tags(tags), JoinSummary())
    assert isinstance(spilled, SpilledPartial)
    assert spilled.limit == tiny.spill_limit == (tiny.scan_limit or 0) // 2
    spilled.close()
    _no_spill_left(work)


def test_a_scan_spills_only_what_overflows_and_writes_each_pair_row_once(
    world: tuple[Path, pa.Table], tmp_path: Path
) -> None:
    """Past the scan's share the oldest held pairs are spilled as they are, into their user
    buckets, while the rest stay held (decision 0067) and are not written at the end either
    (decision 0070): every row the join aggregated is on disk once or held, none written twice,
    and the state is the unbounded one."""
    logs, tags = world
    work = tmp_path / "work"
    unbounded = LocalEngine(memory_mb=None, work_dir=work)
    _, files = unbounded.log_files(logs)
    summary = JoinSummary()
    want = unbounded.scan(files, prepare_tags(tags), summary).pairs
    engine = LocalEngine(memory_mb=0.5 * want.nbytes / (1 << 20), work_dir=work, batch_size=4096)
    assert engine.scan_limit is not None and engine.scan_limit < want.nbytes
    partial = engine.scan(files, prepare_tags(tags), JoinSummary())
    assert isinstance(partial, SpilledPartial) and isinstance(partial.runs, UserBuckets)
    buckets = partial.runs
    held = sum(t.num_rows for tables in buckets.tables for t in tables)
    assert 0 < buckets.overflowed_rows == buckets.spilled_rows  # some overflowed mid-scan...
    assert held > 0  # ...the rest stay held, unwritten,
    assert want.num_rows <= buckets.spilled_rows + held < 2 * want.num_rows  # each row once
    got = pa.concat_tables(list(pair_chunks(partial)))
    assert not any(buckets.tables) and buckets.held == 0  # let go as their groups were reduced
    partial.close()
    _no_spill_left(work)
    assert got.equals(want)


def test_a_bucket_over_the_limit_merges_through_sorted_runs(
    world: tuple[Path, pa.Table], tmp_path: Path
) -> None:
    """One bucket holding more than the fold's limit is reduced in pieces into sorted runs and
    merged range by range: the same pairs, in order, as one reduce of everything."""
    logs, tags = world
    engine = LocalEngine(memory_mb=None)
    _, files = engine.log_files(logs)
    parts = [engine.scan([f], prepare_tags(tags), JoinSummary()).pairs for f in files]
    one = UserBuckets(np.zeros(0, dtype=np.uint64), tmp_path / "b")  # a single bucket
    for pairs in parts:
        one.add(pairs)
    one.spill_oldest(0)
    one.add(parts[0])  # held beside the spilled rows
    limit = sum(p.nbytes for p in parts) // 8
    chunks = list(one.merged(limit))
    assert len(chunks) > 2
    want = reduce_pairs(pa.concat_tables([*parts, parts[0]]))
    assert pa.concat_tables(chunks).equals(want)
    one.close()
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_held_and_spilled_buckets_merge_in_order_on_several_threads(
    world: tuple[Path, pa.Table], tmp_path: Path, workers: int
) -> None:
    """Buckets partly spilled and partly held, reduced in small groups by several threads at
    once (decision 0070): the chunks come in order, give the pairs of one reduce, and every
    held piece is let go."""
    logs, tags = world
    engine = LocalEngine(memory_mb=None)
    _, files = engine.log_files(logs)
    parts = [engine.scan([f], prepare_tags(tags), JoinSummary()).pairs for f in files]
    users = pa.chunked_array([p["user_id"] for p in parts])
    buckets = UserBuckets.around(users, tmp_path / "b", count=16)
    for pairs in parts:
        buckets.add(pairs)
    buckets.spill_oldest(buckets.held // 2)
    buckets.finish()
    assert buckets and buckets.held > 0  # some spilled, some held
    limit = sum(p.nbytes for p in parts) // 3
    chunks = list(buckets.merged(limit, workers=workers))
    assert len(chunks) > workers
    assert pa.concat_tables(chunks).equals(reduce_pairs(pa.concat_tables(parts)))
    assert buckets.held == 0 and not any(buckets.tables)
    buckets.close()
    assert not (tmp_path / "b").exists()


def test_user_prefixes_keep_the_ids_byte_order() -> None:
    """Ids in byte order have non-decreasing prefixes (short, empty, shared 8-byte starts,
    non-ASCII), and nulls the largest: so user-range buckets keep the ids' order."""
    rng = np.random.default_rng(67)
    alphabet = list("ab0Z\u00e9\u4e2d")
    ids = ["".join(rng.choice(alphabet, rng.integers(0, 12))) for _ in range(3000)]
    ids += ["u0000000", "u00000001", "u00000000", ""]
    ordered = sorted(ids, key=lambda v: v.encode())
    prefixes = user_prefixes(pa.array(ordered, pa.string()))
    assert (np.diff(prefixes.astype(np.float64)) >= 0).all()
    assert np.all(prefixes[1:] >= prefixes[:-1])
    sliced = user_prefixes(pa.array(["x", None, *ordered], pa.string()).slice(1))
    assert sliced[0] == np.iinfo(np.uint64).max and np.array_equal(sliced[1:], prefixes)
    at = rng.integers(0, len(ordered) + 1, 500)
    assert np.array_equal(user_prefixes(pa.array(["x", None, *ordered]).slice(1), at), sliced[at])


def test_user_prefixes_in_c_equal_numpys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C pass gives numpy's gathers' prefixes, of slices and of rows ``at`` too."""
    import offline.join.buckets as buckets
    from tests.fixtures.ids import ADVERSARIAL, noise

    if buckets._pairsort is None:
        pytest.skip("offline.join._pairsort is not built")
    ids = pa.array(["x", None, *ADVERSARIAL, *noise(800, 5), ""], pa.string()).slice(1)
    at = np.random.default_rng(3).integers(0, len(ids), 300)
    native = [user_prefixes(ids), user_prefixes(ids, at), user_prefixes(ids.slice(0, 0))]
    monkeypatch.setattr(buckets, "_pairsort", None)
    gathered = [user_prefixes(ids), user_prefixes(ids, at), user_prefixes(ids.slice(0, 0))]
    assert all(np.array_equal(a, b) for a, b in zip(native, gathered, strict=True))
    assert native[0][0] == np.iinfo(np.uint64).max  # the null


def test_the_reports_exposed_pairs_read_a_spilled_scan_whole(
    world: tuple[Path, pa.Table], tmp_path: Path
) -> None:
    """A report window whose scan spills gets every pair (not the empty in-memory table)."""
    from offline.report.outcomes import exposed_pairs

    logs, tags = world
    days = [t(day).date().isoformat() for day in range(1, DAYS + 1)]
    window = (t(1).timestamp(), t(DAYS).timestamp() + 43_200)
    work = tmp_path / "work"
    tiny = LocalEngine(memory_mb=TINY_MB, work_dir=work, batch_size=4096)
    got, summary = exposed_pairs(logs, tags, days, window, engine=tiny)
    want, _ = exposed_pairs(logs, tags, days, window, engine=LocalEngine(memory_mb=None))
    order = [("user_id", "ascending"), ("rumor_id", "ascending")]
    assert want.num_rows > 10_000
    assert summary.pairs == want.num_rows
    assert got.sort_by(order).equals(want.sort_by(order))
    _no_spill_left(work)
