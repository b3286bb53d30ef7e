"""The exposure join on the local engine and on Spark ``local[2]``, over the same files.

    make bench-spark                                  # 100000 users x 7 days, best of 2
    .venv/bin/python -m bench.bench_spark --users 200000 --days 10 --repeat 3

The logs of a cached synthetic world are rewritten as pyarrow writes them by default (snappy,
dictionary-encoded ids), as a platform's writer would. Each engine runs in a child process of
its own, ``--repeat`` times in a row (the best time counts; Spark's session start and its first,
cold run are reported apart). Peak memory is the child's own (VmHWM), plus for Spark the JVM's.
Both results are compared exactly; a mismatch fails the run. Results go to
bench/out/bench_spark.json. On 2 shared cores Spark is expected to be slower: it is there for
logs past one machine, not to beat the local engine on one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.bench_exposures import ensure_world, log_files, log_rows, warm_page_cache
from bench.common import (
    command_line,
    current_rss_mb,
    emit,
    format_table,
    machine,
    peak_rss_mb,
    run_child,
    timed,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
REPORT = OUT / "bench_spark.json"
MASTER = "local[2]"


def default_layout(world: Path) -> Path:
    """The world's logs and tags rewritten with pyarrow's default writer options, cached."""
    out = OUT / "spark-worlds" / world.name
    done = out / ".complete"
    if done.exists():
        return out
    for f in log_files(world):
        target = out / "exposures" / f.parent.name / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pq.read_table(f), target)  # snappy, dictionaries for every column
    pq.write_table(pq.read_table(world / "tagged_items.parquet"), out / "tagged_items.parquet")
    done.touch()
    return out


def _jvm_peak_mb(session: Any) -> float | None:
    """The Spark JVM's peak resident set (VmHWM), when it runs on this machine."""
    pid = session.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def child(engine: str, world: Path, result: Path, repeat: int) -> int:
    """``repeat`` timed joins with ``engine``; writes the last result, prints one JSON line."""
    import pyarrow as pa

    from offline.io.catalog import load_tags
    from offline.join.engine import engine_named, join_exposures

    pa.set_cpu_count(2)
    pa.set_io_thread_count(2)
    extra: dict[str, Any] = {}
    runner = engine_named(engine)
    if engine == "spark":
        from offline.join import spark_session

        with timed() as start:
            session = spark_session.get_session(MASTER)
        extra["session_start_s"] = round(start.seconds, 2)
    tags = load_tags(world / "tagged_items.parquet")
    base = current_rss_mb()
    seconds = []
    for _ in range(repeat):
        with timed() as t:
            state, summary = join_exposures(world / "exposures", tags, engine=runner)
        seconds.append(round(t.seconds, 3))
    if engine == "spark":
        extra["jvm_peak_rss_mb"] = _jvm_peak_mb(session)
    pq.write_table(state, result)
    emit({"engine": engine, "seconds": seconds, "pairs": state.num_rows,
          "rows_read": summary.rows_read, "rows_kept": summary.rows_kept,
          "base_rss_mb": base, "peak_rss_mb": peak_rss_mb(), **extra})  # fmt: skip
    return 0


def run_engine(engine: str, world: Path, repeat: int) -> dict[str, Any]:
    result = OUT / "results" / f"spark-bench-{engine}.parquet"
    result.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "bench.bench_spark", "--child", engine, "--world", str(world),
           "--repeat", str(repeat), "--result", str(result)]  # fmt: skip
    done = run_child(cmd)
    return {**done.report, "result": str(result), "wall_seconds": done.wall_seconds}


def bench(users: int, days: int, seed: int, repeat: int) -> dict[str, Any]:
    world = default_layout(ensure_world(users, days, seed))
    files = log_files(world)
    rows = log_rows(files)
    warm_page_cache(files)
    runs = {engine: run_engine(engine, world, repeat) for engine in ("local", "spark")}
    local, spark = (pq.read_table(runs[e]["result"]) for e in ("local", "spark"))
    if not local.equals(spark):
        raise SystemExit("the Spark result differs from the local engine's")
    for run in runs.values():
        run["best_seconds"] = min(run["seconds"])
        run["rows_per_s"] = round(rows / run["best_seconds"])
    return {
        "command": command_line(),
        "machine": machine(),
        "world": {
            "users": users,
            "days": days,
            "seed": seed,
            "files": len(files),
            "rows": rows,
            "bytes": sum(f.stat().st_size for f in files),
        },  # fmt: skip
        "master": MASTER,
        "engines": runs,
        "spark_over_local": round(runs["spark"]["rows_per_s"] / runs["local"]["rows_per_s"], 3),
        "identical": True,
    }


def report(result: dict[str, Any]) -> None:
    rows = []
    for name, run in result["engines"].items():
        memory = run["peak_rss_mb"] + (run.get("jvm_peak_rss_mb") or 0)
        rows.append([name, run["best_seconds"], run["seconds"][0], run["rows_per_s"],
                     run["peak_rss_mb"], run.get("jvm_peak_rss_mb") or 0.0, memory])  # fmt: skip
    headers = ["engine", "best s", "first s", "rows/s", "driver MB", "JVM MB", "total MB"]
    world = result["world"]
    print(f"{world['rows']:,} log rows in {world['files']} files ({world['bytes'] / 2**20:.0f} "
          f"MB, pyarrow defaults), {result['machine']['cpus']} cpus")  # fmt: skip
    print(format_table(headers, rows))
    print(f"spark/local throughput: {result['spark_over_local']}  (outputs identical)")
    if "session_start_s" in result["engines"]["spark"]:
        print(f"spark session start: {result['engines']['spark']['session_start_s']} s (untimed)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=2, help="runs per engine (best counts)")
    p.add_argument("--child", choices=["local", "spark"], help=argparse.SUPPRESS)
    p.add_argument("--world", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args.child, args.world, args.result, args.repeat)
    result = bench(args.users, args.days, args.seed, args.repeat)
    OUT.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(result, indent=1, default=str))
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
