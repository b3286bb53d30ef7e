"""The exposure-join benchmark's two sides, each run in a child process of its own: our join and
DuckDB's SQL over the same log files and tag file, and the exact comparison of their outputs.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import current_rss_mb, emit, peak_rss_mb, run_child, timed
from domain.vocab import ACTIONS, SURFACES
from offline.io import logs as logfiles

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "bench_exposures.py"
RESULTS = ROOT / "bench" / "out" / "results"
THREADS = 2
ENGINES = ("ours", "duckdb")
KEYS = ["user_id", "rumor_id"]
TS = pa.timestamp("us", tz="UTC")
COMPARED = pa.schema(
    [
        ("user_id", pa.string()),
        ("rumor_id", pa.string()),
        ("exposures", pa.int64()),
        ("first_ts", TS),
        ("last_ts", TS),
        ("strongest_action", pa.string()),
        ("surface_mask", pa.int16()),
        ("shared", pa.bool_()),
        ("first_share_ts", TS),
        ("last_share_ts", TS),
    ]
)


def log_files(world: Path) -> list[Path]:
    """The exposure log files, exactly as our join lists them."""
    logs = world / "exposures"
    return [f for dt in logfiles.partitions(logs) for f in logfiles.partition_files(logs, dt)]


def log_rows(files: list[Path]) -> int:
    """Rows in the log files, from the Parquet footers."""
    return sum(pq.read_metadata(f).num_rows for f in files)


def warm_page_cache(files: list[Path]) -> None:
    """Read every file once so that neither engine pays for the first cold read."""
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


# --- engines (run in child processes) --------------------------------------------------------


def limit_arrow_threads() -> None:
    """Give Arrow the same 2 threads DuckDB gets."""
    pa.set_cpu_count(THREADS)
    pa.set_io_thread_count(THREADS)


def run_ours(world: Path, tags: Path, result: Path) -> tuple[int, dict[str, Any]]:
    """Our streaming join over the world's logs and the tagged items of ``tags``, written to
    ``result`` as ``debunk exposures`` writes it (range by range, the default memory budget,
    spilling beside the result); (pairs, counts)."""
    from offline.io.catalog import load_tags
    from offline.join.engine import write_exposures
    from offline.join.local import LocalEngine

    budget = os.environ.get("BENCH_MEMORY_MB")  # set by bench_exposures --memory-mb
    if budget is None:
        engine = LocalEngine(work_dir=result.parent)
    else:
        limit = None if budget == "none" else float(budget)
        engine = LocalEngine(work_dir=result.parent, memory_mb=limit)
    summary = write_exposures(world / "exposures", load_tags(tags), result, engine=engine)
    return summary.pairs, {"rows_read": summary.rows_read, "rows_kept": summary.rows_kept}


def _sql_str(value: str | Path) -> str:
    """A quoted SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _sql_list(values: list[str]) -> str:
    """A SQL list literal of quoted strings."""
    return "[" + ", ".join(_sql_str(v) for v in values) + "]"


def _sql_code(column: str, vocabulary: tuple[str, ...]) -> str:
    """A CASE giving each value's index in ``vocabulary`` (NULL when unknown)."""
    whens = " ".join(f"WHEN '{v}' THEN {i}" for i, v in enumerate(vocabulary))
    return f"CASE {column} {whens} END"


def duckdb_sql(files: list[Path], tags: Path) -> str:
    """The DuckDB equivalent of join_exposures: same filters, same output columns and order."""
    share = ACTIONS.index("share")
    return f"""
    WITH tags AS (
        SELECT DISTINCT CAST(item_id AS VARCHAR) AS item_id, CAST(rumor_id AS VARCHAR) AS rumor_id
        FROM read_parquet({_sql_str(tags)})
        WHERE item_id IS NOT NULL AND rumor_id IS NOT NULL
    ),
    logs AS (
        SELECT user_id, item_id, ts,
               {_sql_code("action", ACTIONS)} AS a,
               {_sql_code("surface", SURFACES)} AS s
        FROM read_parquet({_sql_list([str(f) for f in files])}, hive_partitioning = false)
    )
    SELECT l.user_id, t.rumor_id,
           count(*)::BIGINT AS exposures,
           min(l.ts) AS first_ts,
           max(l.ts) AS last_ts,
           ({_sql_list(list(ACTIONS))})[max(l.a) + 1] AS strongest_action,
           bit_or((1 << l.s)::SMALLINT) AS surface_mask,
           max(l.a) = {share} AS shared,
           min(l.ts) FILTER (WHERE l.a = {share}) AS first_share_ts,
           max(l.ts) FILTER (WHERE l.a = {share}) AS last_share_ts
    FROM logs AS l JOIN tags AS t ON l.item_id = t.item_id
    WHERE l.user_id <> '' AND l.item_id <> '' AND l.ts IS NOT NULL
      AND l.a IS NOT NULL AND l.s IS NOT NULL
    GROUP BY l.user_id, t.rumor_id
    ORDER BY l.user_id, t.rumor_id
    """


def run_duckdb(world: Path, tags: Path, result: Path) -> tuple[int, dict[str, Any]]:
    """DuckDB's SQL over the same files, 2 threads, result materialised as an Arrow table and
    written to ``result`` (zstd, as ours); (pairs, {})."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {THREADS}")
    con.execute("SET TimeZone = 'UTC'")
    table = con.sql(duckdb_sql(log_files(world), tags)).to_arrow_table()
    con.close()
    pq.write_table(table, result, compression="zstd")
    return table.num_rows, {}


def child(engine: str, world: Path, tags: Path, result: Path) -> int:
    """One timed run of ``engine``: writes its result Parquet, prints one JSON line."""
    limit_arrow_threads()
    run = run_ours if engine == "ours" else run_duckdb
    if engine == "duckdb":
        import duckdb  # noqa: F401  (import cost stays out of the timing, as for ours)
    else:
        import offline.io.catalog
        import offline.join.local  # noqa: F401
    result.parent.mkdir(parents=True, exist_ok=True)
    base = current_rss_mb()
    cpu = _cpu_seconds()
    with timed() as t:  # the output is written inside the timing, by both engines
        pairs, extra = run(world, tags, result)
    cpu = _cpu_seconds() - cpu
    peak = peak_rss_mb()
    emit(
        {
            "engine": engine,
            "seconds": round(t.seconds, 3),
            "cpu_seconds": round(cpu, 3),
            "pairs": pairs,
            "base_rss_mb": base,
            "peak_rss_mb": peak,
            **extra,
        }
    )
    return 0


def _cpu_seconds() -> float:
    """CPU time (user + system) of every thread of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _normalised(path: Path) -> pa.Table:
    """A result file cut down to the compared columns, their types, sorted by the keys."""
    table = pq.read_table(path)
    table = table.select(COMPARED.names).cast(COMPARED)
    return table.sort_by([(k, "ascending") for k in KEYS]).combine_chunks()


def compare(ours: Path, theirs: Path) -> str | None:
    """None when both results hold the same rows; else what differs, with an example."""
    a, b = _normalised(ours), _normalised(theirs)
    if a.equals(b):
        return None
    if a.num_rows != b.num_rows:
        ka = set(zip(*(a[k].to_pylist() for k in KEYS), strict=True))
        kb = set(zip(*(b[k].to_pylist() for k in KEYS), strict=True))
        only_a, only_b = sorted(ka - kb)[:3], sorted(kb - ka)[:3]
        return (
            f"{a.num_rows} pairs (ours) vs {b.num_rows} (duckdb); "
            f"only in ours e.g. {only_a}, only in duckdb e.g. {only_b}"
        )
    for name in COMPARED.names:
        if not a[name].equals(b[name]):
            diff = a[name].to_pylist(), b[name].to_pylist()
            i = next(i for i, (x, y) in enumerate(zip(*diff, strict=True)) if x != y)
            key = {k: a[k][i].as_py() for k in KEYS}
            ours_v, duck_v = diff[0][i], diff[1][i]
            return f"column {name!r} differs, first at {key}: ours={ours_v!r} duckdb={duck_v!r}"
    return "tables differ (types or chunking)"


def run_engine(engine: str, world: Path, tags: Path, result: Path) -> dict[str, Any]:
    """Run one engine once in a fresh child process."""
    cmd = [sys.executable, str(SCRIPT), "--engine", engine, "--world", str(world)]
    done = run_child([*cmd, "--tags", str(tags), "--result", str(result)])
    return {**done.report, "wait4_maxrss_mb": done.maxrss_mb, "wall_seconds": done.wall_seconds}


def best(runs: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    """Best time of an engine's runs, its throughput, and the highest peak RSS of any run."""
    seconds = min(r["seconds"] for r in runs)
    return {
        "best_seconds": seconds,
        "best_cpu_seconds": min(r["cpu_seconds"] for r in runs),
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "base_rss_mb": min(r["base_rss_mb"] for r in runs),
        "runs": runs,
    }


def bench_point(world: Path, tags: Path, label: str, repeat: int) -> dict[str, Any]:
    """Both engines on one world's logs and one tag file, ``repeat`` times interleaved (ours,
    duckdb, ours, ...), outputs compared exactly."""
    files = log_files(world)
    rows = log_rows(files)
    warm_page_cache(files)
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
    paths = {e: RESULTS / f"{label}.{e}.parquet" for e in ENGINES}
    for i in range(repeat):
        for engine in ENGINES:
            r = run_engine(engine, world, tags, paths[engine])
            runs[engine].append(r)
            print(
                f"  {label} run {i + 1}/{repeat} {engine:6s} {r['seconds']:7.2f}s"
                f" cpu {r['cpu_seconds']:6.2f}s"
                f"  peak RSS {r['peak_rss_mb']:7.1f} MB",
                flush=True,
            )
    read = {r.get("rows_read") for r in runs["ours"]}
    if read != {rows}:
        raise RuntimeError(f"ours read {read} rows, the footers say {rows}")
    engines = {e: best(runs[e], rows) for e in ENGINES}
    mismatch = compare(paths["ours"], paths["duckdb"])
    return {
        "label": label,
        "world": str(world.relative_to(ROOT)),
        "tags": str(tags),
        "log_files": len(files),
        "log_bytes": sum(f.stat().st_size for f in files),
        "log_rows": rows,
        "rows_kept": runs["ours"][-1].get("rows_kept"),
        "pairs": runs["ours"][-1]["pairs"],
        "match": mismatch is None,
        "mismatch": mismatch,
        "engines": engines,
        "ours_over_duckdb_throughput": round(
            engines["ours"]["rows_per_s"] / engines["duckdb"]["rows_per_s"], 3
        ),
        # The same ratio in CPU time (both threads): steadier than wall time on a loaded machine.
        "ours_over_duckdb_cpu": round(
            engines["duckdb"]["best_cpu_seconds"] / max(engines["ours"]["best_cpu_seconds"], 1e-9),
            3,
        ),
    }
