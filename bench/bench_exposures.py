"""Exposure-join benchmark: our streaming join against DuckDB's SQL on the same Parquet logs.

    make bench-offline                          # quick sweep: 4 layouts x 4 hit rates, 10M rows
    make bench-offline BENCH_ARGS=--full        # 6 layouts x 4 hit rates, 20M rows, best of 3
    make bench-offline BENCH_ARGS=--profile     # plus ours' time per stage at each point
    .venv/bin/python bench/bench_exposures.py --sizes 200000x10,2000000x40 --repeat 1
                                                # our generator's worlds (offline.synth)

The sweep writes one skewed world (heavy users, a few viral items a day) in the layouts real
writers produce (bench/exposure_layouts.py) and tags items so that 0.1%, 1%, 5% and 10% of the
rows are on tagged items. Each engine runs in a child process of its own (so its peak RSS is its
own), with 2 threads, interleaved (ours, duckdb, ours, ...); the best time of each counts.
Throughput is log rows read per second, and ours/duckdb is taken within the same run because
the machine is shared. Both outputs are compared exactly; a mismatch fails the run. Worlds are
cached under bench/out/worlds, results go to bench/out/bench_exposures.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command_line, format_table, machine, timed  # noqa: E402
from bench.exposure_engines import ENGINES, THREADS, bench_point, child  # noqa: E402
from bench.exposure_layouts import HIT_RATES  # noqa: E402
from bench.exposure_profile import print_profile, profile, profile_child  # noqa: E402
from bench.exposure_sweep import FULL, QUICK, print_sweep, run_sweep  # noqa: E402

OUT = ROOT / "bench" / "out"
WORLDS = OUT / "worlds"
RUMORS: int | None = None  # --rumors; part of the cached world's name
REPORT = OUT / "bench_exposures.json"


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


# --- parent: runs, comparison, report --------------------------------------------------------


def bench_size(users: int, days: int, seed: int, repeat: int) -> dict[str, Any]:
    """Both engines on one generated world, ``repeat`` times interleaved, outputs compared."""
    world = ensure_world(users, days, seed)
    point = bench_point(world, world / "tagged_items.parquet", world.name, repeat)
    return {"size": f"{users}x{days}", "users": users, "days": days, "seed": seed, **point}


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


def parse_rates(text: str) -> tuple[float, ...]:
    """``0.1,1,5`` (percent) -> (0.001, 0.01, 0.05)."""
    try:
        rates = tuple(float(v) / 100 for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad hit rates {text!r}: expected percents") from None
    if not all(0 < r < 1 for r in rates):
        raise argparse.ArgumentTypeError(f"hit rates must be in (0, 100): {text!r}")
    return rates


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--full", action="store_true", help="the full sweep (6 layouts, best of 3)")
    p.add_argument("--layouts", help="sweep only these layouts, comma-separated")
    p.add_argument("--hit-rates", type=parse_rates, help="percent of rows on tags, e.g. 0.1,5")
    p.add_argument("--rows", type=int, help="sweep world: log rows")
    p.add_argument("--users", type=int, help="users (sweep world, or a generated world)")
    p.add_argument("--days", type=int, help="days (sweep world, or a generated world)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, help="runs per engine (best counts)")
    p.add_argument("--rumors", type=int, help="rumors in a generated world (default users//1000)")
    p.add_argument("--sizes", type=parse_sizes, help="generated worlds, e.g. 200000x10,400000x10")
    p.add_argument("--profile", action="store_true", help="also time ours stage by stage")
    p.add_argument(
        "--memory-mb", help="ours' pair-state budget (a number, or none: unbounded); default: "
        "the engine's (debunk exposures --memory-mb)",
    )  # fmt: skip
    p.add_argument("--engine", choices=[*ENGINES, "profile"], help=argparse.SUPPRESS)  # child
    p.add_argument("--world", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--tags", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        p.error("--repeat must be >= 1")
    return args


def sweep(args: argparse.Namespace) -> dict[str, Any]:
    """The layout x hit-rate sweep with the quick or full defaults, overridden by the flags."""
    base = FULL if args.full else QUICK
    names = tuple(args.layouts.split(",")) if args.layouts else base["layouts"]
    return run_sweep(
        users=args.users or base["users"], days=args.days or base["days"],
        rows=args.rows or base["rows"], seed=args.seed, names=names,
        rates=args.hit_rates or HIT_RATES, repeat=args.repeat or base["repeat"],
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    global RUMORS
    RUMORS = args.rumors
    if args.memory_mb is not None:  # the children read it (bench.exposure_engines.run_ours)
        os.environ["BENCH_MEMORY_MB"] = args.memory_mb
    if args.engine == "profile":
        return profile_child(args.world, args.tags)
    if args.engine:
        return child(args.engine, args.world, args.tags, args.result)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "command": command_line(),
        "machine": machine(),
        "versions": versions(),
        "threads": THREADS,
    }
    generated = args.sizes or (args.rows is None and args.users and args.days)
    if generated:
        sizes = args.sizes or [(args.users, args.days)]
        result["repeat"] = args.repeat or 3
        result["sizes"] = [bench_size(u, d, args.seed, result["repeat"]) for u, d in sizes]
        points = result["sizes"]
    else:
        result["sweep"] = sweep(args)
        result["repeat"] = result["sweep"]["repeat"]
        points = result["sweep"]["points"]
    if args.profile:
        for point in points:
            point["profile_ours"] = profile(ROOT / point["world"], Path(point["tags"]), 1)
    result["seconds"] = round(time.perf_counter() - started, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(result, indent=2) + "\n")
    if generated:
        report(result)
    else:
        print_sweep(result["sweep"])
        print(f"command: {result['command']}")
    for point in points:
        if "profile_ours" in point:
            print_profile(point.get("size") or point["label"], point["profile_ours"])
    bad = [p for p in points if not p["match"]]
    for p in bad:
        print(f"MISMATCH at {p['world']}: ours and duckdb differ: {p['mismatch']}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
