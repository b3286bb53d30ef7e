"""Exposure-join benchmark: our streaming join against DuckDB's SQL on the same Parquet logs.

    make bench-offline                                     # 200000 users x 10 days, best of 3
    .venv/bin/python bench/bench_exposures.py --sizes 200000x10,400000x10 --repeat 1
    make bench-offline BENCH_ARGS=--profile                # plus ours' time per stage

Each engine runs in a child process of its own (so its peak RSS is its own), with 2 threads,
interleaved (ours, duckdb, ours, duckdb, ...); the best time of each counts. Throughput is log
rows read per second, and ours/duckdb is taken within the same run because the machine is shared.
Both outputs are compared exactly; a mismatch fails the run. Worlds are cached under
bench/out/worlds, results go to bench/out/bench_exposures.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    command_line,
    current_rss_mb,
    emit,
    format_table,
    machine,
    peak_rss_mb,
    run_child,
    timed,
)
from domain.vocab import ACTIONS, SURFACES  # noqa: E402
from offline.io import logs as logfiles  # noqa: E402

OUT = ROOT / "bench" / "out"
WORLDS = OUT / "worlds"
RUMORS: int | None = None  # --rumors; part of the cached world's name
RESULTS = OUT / "results"
REPORT = OUT / "bench_exposures.json"
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


# --- inputs ----------------------------------------------------------------------------------


def world_dir(users: int, days: int, seed: int) -> Path:
    """Where the world of these parameters is cached."""
    return (
        WORLDS / f"{users}-{days}-{seed}"
        if RUMORS is None
        else WORLDS / f"{users}-{days}-{seed}-r{RUMORS}"
    )


def ensure_world(users: int, days: int, seed: int) -> Path:
    """The cached synthetic world, generated first when its world.json is missing."""
    out = world_dir(users, days, seed)
    if (out / "world.json").exists():
        return out
    from offline.synth.world import synthesize  # imported late: only needed on a cache miss

    shutil.rmtree(out, ignore_errors=True)
    print(f"generating world users={users} days={days} seed={seed} -> {out}", flush=True)
    with timed() as t:
        synthesize(out, users=users, days=days, seed=seed, rumors=RUMORS)
    print(f"  done in {t.seconds:.1f}s", flush=True)
    return out


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


def run_ours(world: Path) -> tuple[pa.Table, dict[str, Any]]:
    """Our streaming join over the world's logs and tagged items."""
    from offline.io.catalog import load_tags
    from offline.join.engine import join_exposures

    state, summary = join_exposures(world / "exposures", load_tags(world / "tagged_items.parquet"))
    return state, {"rows_read": summary.rows_read, "rows_kept": summary.rows_kept}


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


def run_duckdb(world: Path) -> tuple[pa.Table, dict[str, Any]]:
    """DuckDB's SQL over the same files, 2 threads, result materialised as an Arrow table."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {THREADS}")
    con.execute("SET TimeZone = 'UTC'")
    table = con.sql(duckdb_sql(log_files(world), world / "tagged_items.parquet")).to_arrow_table()
    con.close()
    return table, {}


def child(engine: str, world: Path, result: Path) -> int:
    """One timed run of ``engine``: writes its result Parquet, prints one JSON line."""
    limit_arrow_threads()
    run = run_ours if engine == "ours" else run_duckdb
    if engine == "duckdb":
        import duckdb  # noqa: F401  (import cost stays out of the timing, as for ours)
    else:
        import offline.io.catalog
        import offline.join.local  # noqa: F401
    base = current_rss_mb()
    with timed() as t:
        table, extra = run(world)
    peak = peak_rss_mb()
    result.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, result)
    emit(
        {
            "engine": engine,
            "seconds": round(t.seconds, 3),
            "pairs": table.num_rows,
            "base_rss_mb": base,
            "peak_rss_mb": peak,
            **extra,
        }
    )
    return 0


# --- profile of ours (child process) -------------------------------------------------------


def profile_ours(world: Path) -> dict[str, float]:
    """Where ours spends its time: decoding alone, per-batch processing alone, and the whole join.

    The join overlaps decoding (Arrow's threads) with processing (a pool of 2), so its total is
    less than the sum of the two separate passes.
    """
    from offline.io.catalog import load_tags
    from offline.join.contracts import prepare_tags
    from offline.join.engine import join_exposures
    from offline.join.screen import screen_batch
    from offline.join.tag_index import TagIndex, join_candidates

    index = TagIndex.build(prepare_tags(load_tags(world / "tagged_items.parquet")))
    stages: dict[str, float] = {}
    started = time.perf_counter()
    batches = list(logfiles.scan(log_files(world)))
    stages["decode only (scan pass, 2 threads)"] = time.perf_counter() - started
    started = time.perf_counter()
    screened = [screen_batch(lb, index.prefilter).candidates for lb in batches]
    stages["screen batches (validate, prefilter; 1 thread)"] = time.perf_counter() - started
    started = time.perf_counter()
    join_candidates(pa.concat_tables(screened), index)
    stages["join candidates (exact lookup, aggregate; 1 thread)"] = time.perf_counter() - started
    del batches
    started = time.perf_counter()
    join_exposures(world / "exposures", load_tags(world / "tagged_items.parquet"))
    stages["total"] = time.perf_counter() - started
    return {k: round(v, 3) for k, v in stages.items()}


def profile_child(world: Path) -> int:
    """Print ours' stage timings as one JSON line."""
    limit_arrow_threads()
    emit({"engine": "profile", "stages": profile_ours(world), "peak_rss_mb": peak_rss_mb()})
    return 0


def profile(world: Path, repeat: int) -> dict[str, Any]:
    """The stage timings of ours' best (fastest total) of ``repeat`` profiled runs."""
    cmd = [sys.executable, __file__, "--engine", "profile", "--world", str(world)]
    runs = [run_child(cmd).report for _ in range(repeat)]
    return min(runs, key=lambda r: r["stages"]["total"])


def print_profile(size: str, prof: dict[str, Any]) -> None:
    """The stage table of a profile run."""
    stages = prof["stages"]
    total = stages["total"]
    rows = [[k, v, f"{100 * v / total:.1f}%"] for k, v in stages.items()]
    print(f"\nours, stage by stage ({size}, 2 threads, fastest of the profiled runs):")
    print(format_table(["stage", "seconds", "% of total"], rows))


# --- parent: runs, comparison, report --------------------------------------------------------


def run_engine(engine: str, world: Path, result: Path) -> dict[str, Any]:
    """Run one engine once in a fresh child process."""
    cmd = [sys.executable, __file__, "--engine", engine, "--world", str(world)]
    done = run_child([*cmd, "--result", str(result)])
    return {**done.report, "wait4_maxrss_mb": done.maxrss_mb, "wall_seconds": done.wall_seconds}


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


def best(runs: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    """Best time of an engine's runs, its throughput, and the highest peak RSS of any run."""
    seconds = min(r["seconds"] for r in runs)
    return {
        "best_seconds": seconds,
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "base_rss_mb": min(r["base_rss_mb"] for r in runs),
        "runs": runs,
    }


def bench_size(users: int, days: int, seed: int, repeat: int) -> dict[str, Any]:
    """Both engines on one world, ``repeat`` times interleaved, outputs compared."""
    world = ensure_world(users, days, seed)
    files = log_files(world)
    rows = log_rows(files)
    warm_page_cache(files)
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
    paths = {e: RESULTS / f"{world.name}.{e}.parquet" for e in ENGINES}
    for i in range(repeat):
        for engine in ENGINES:
            r = run_engine(engine, world, paths[engine])
            runs[engine].append(r)
            print(
                f"  {world.name} run {i + 1}/{repeat} {engine:6s} {r['seconds']:7.2f}s"
                f"  peak RSS {r['peak_rss_mb']:7.1f} MB",
                flush=True,
            )
    read = {r.get("rows_read") for r in runs["ours"]}
    if read != {rows}:
        raise RuntimeError(f"ours read {read} rows, the footers say {rows}")
    engines = {e: best(runs[e], rows) for e in ENGINES}
    mismatch = compare(paths["ours"], paths["duckdb"])
    return {
        "size": f"{users}x{days}",
        "users": users,
        "days": days,
        "seed": seed,
        "world": str(world.relative_to(ROOT)),
        "log_files": len(files),
        "log_bytes": sum(f.stat().st_size for f in files),
        "log_rows": rows,
        "pairs": runs["ours"][-1]["pairs"],
        "match": mismatch is None,
        "mismatch": mismatch,
        "engines": engines,
        "ours_over_duckdb_throughput": round(
            engines["ours"]["rows_per_s"] / engines["duckdb"]["rows_per_s"], 3
        ),
    }


def table_rows(sizes: list[dict[str, Any]]) -> list[list[Any]]:
    """One table row per (size, engine)."""
    out = []
    for s in sizes:
        for engine in ENGINES:
            e = s["engines"][engine]
            ratio = s["ours_over_duckdb_throughput"] if engine == "ours" else 1.0
            out.append(
                [
                    s["size"],
                    engine,
                    s["log_rows"],
                    s["pairs"],
                    e["best_seconds"],
                    e["rows_per_s"],
                    e["peak_rss_mb"],
                    e["base_rss_mb"],
                    ratio,
                    "yes" if s["match"] else "NO",
                ]
            )
    return out


def rss_growth(sizes: list[dict[str, Any]]) -> list[str]:
    """How peak RSS grew against log rows, relative to the first size."""
    first = sizes[0]
    lines = []
    for s in sizes[1:]:
        logs = s["log_rows"] / first["log_rows"]
        for engine in ENGINES:
            a, b = first["engines"][engine]["peak_rss_mb"], s["engines"][engine]["peak_rss_mb"]
            lines.append(
                f"{engine}: {first['size']} -> {s['size']}: log rows x{logs:.2f}, "
                f"peak RSS {a:.0f} -> {b:.0f} MB (x{b / a:.2f})"
            )
    return lines


def report(result: dict[str, Any]) -> None:
    """Print the table, the RSS growth across sizes and the command that produced them."""
    headers = [
        "size",
        "engine",
        "log rows",
        "pairs",
        "best s",
        "rows/s",
        "peak RSS MB",
        "base RSS MB",
        "ours/duckdb",
        "match",
    ]
    print()
    print(format_table(headers, table_rows(result["sizes"])))
    for line in rss_growth(result["sizes"]):
        print(line)
    print(
        f"threads={THREADS} each, best of {result['repeat']} interleaved runs; "
        "rows/s = log rows read / best seconds; ours/duckdb = throughput ratio in this run; "
        "base RSS = after imports, before the join"
    )
    print(f"command: {result['command']}")
    print(f"written: {REPORT.relative_to(ROOT)}")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``200000x10,400000x10`` -> [(200000, 10), (400000, 10)]."""
    sizes = []
    for part in text.split(","):
        users, _, days = part.strip().lower().partition("x")
        if not users.isdigit() or not days.isdigit():
            raise argparse.ArgumentTypeError(f"bad size {part!r}: expected USERSxDAYS")
        sizes.append((int(users), int(days)))
    return sizes


def versions() -> dict[str, str]:
    """Versions of the libraries both sides run on."""
    import duckdb

    return {"pyarrow": pa.__version__, "duckdb": duckdb.__version__}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--days", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3, help="runs per engine (best counts)")
    p.add_argument("--rumors", type=int, help="rumors in the world (default: users // 1000)")
    p.add_argument("--sizes", type=parse_sizes, help="several sizes, e.g. 200000x10,400000x10")
    p.add_argument("--profile", action="store_true", help="also time ours stage by stage")
    p.add_argument("--engine", choices=[*ENGINES, "profile"], help=argparse.SUPPRESS)  # child
    p.add_argument("--world", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    global RUMORS
    RUMORS = args.rumors
    if args.engine == "profile":
        return profile_child(args.world)
    if args.engine:
        return child(args.engine, args.world, args.result)
    started = time.perf_counter()
    sizes = args.sizes or [(args.users, args.days)]
    result: dict[str, Any] = {
        "command": command_line(),
        "machine": machine(),
        "versions": versions(),
        "threads": THREADS,
        "repeat": args.repeat,
        "sizes": [bench_size(u, d, args.seed, args.repeat) for u, d in sizes],
    }
    if args.profile:
        for size in result["sizes"]:
            size["profile_ours"] = profile(ROOT / size["world"], args.repeat)
    result["seconds"] = round(time.perf_counter() - started, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    for size in result["sizes"]:
        if "profile_ours" in size:
            print_profile(size["size"], size["profile_ours"])
    bad = [s for s in result["sizes"] if not s["match"]]
    for s in bad:
        print(f"MISMATCH at {s['size']}: ours and duckdb differ: {s['mismatch']}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
