"""The exposure-join sweep: ours vs DuckDB over file layouts x shares of rows on tagged items,
on one skewed world (bench/exposure_layouts.py), every point in the same run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import format_table
from bench.exposure_engines import ROOT, bench_point
from bench.exposure_layouts import (
    FULL_LAYOUTS,
    QUICK_LAYOUTS,
    ensure_tags,
    ensure_world,
)

WORLDS = ROOT / "bench" / "out" / "worlds"
QUICK = {"users": 400_000, "days": 5, "rows": 10_000_000, "layouts": QUICK_LAYOUTS, "repeat": 1}
FULL = {"users": 1_000_000, "days": 10, "rows": 20_000_000, "layouts": FULL_LAYOUTS, "repeat": 3}


def sweep_world(users: int, days: int, rows: int, seed: int) -> Path:
    """Where the sweep world of these parameters is cached."""
    return WORLDS / f"sweep-{users}-{days}-{rows}-{seed}"


def run_sweep(
    *,
    users: int,
    days: int,
    rows: int,
    seed: int,
    names: tuple[str, ...],
    rates: tuple[float, ...],
    repeat: int,
) -> dict[str, Any]:
    """Every (layout, hit rate) point: both engines, compared, ratios within this run."""
    root, meta = ensure_world(sweep_world(users, days, rows, seed), users, days, rows, seed, names)
    tags = {rate: ensure_tags(root, rate, seed) for rate in rates}
    points = []
    for name in names:
        for rate in rates:
            path, share = tags[rate]
            label = f"{root.name}.{name}.{rate:g}"
            point = bench_point(root / name, path, label, repeat)
            points.append({"layout": name, "hit_rate": rate, "share": share, **point})
    return {
        "world": meta,
        "layouts": {n: meta["layouts"][n] for n in names},
        "hit_rates": list(rates),
        "repeat": repeat,
        "points": points,
    }


def sweep_rows(points: list[dict[str, Any]]) -> list[list[Any]]:
    """One table row per point: layout, hit rate, both throughputs, the ratio, RSS, match."""
    out = []
    for p in points:
        ours, duck = p["engines"]["ours"], p["engines"]["duckdb"]
        out.append(
            [
                p["layout"],
                f"{100 * p['share']:.2f}%",
                p["log_rows"],
                p["pairs"],
                f"{ours['rows_per_s'] / 1e6:.1f}M",
                f"{duck['rows_per_s'] / 1e6:.1f}M",
                p["ours_over_duckdb_throughput"],
                p["ours_over_duckdb_cpu"],
                f"{ours['peak_rss_mb']:.0f} / {duck['peak_rss_mb']:.0f}",
                "yes" if p["match"] else "NO",
            ]
        )
    return out


def print_sweep(sweep: dict[str, Any]) -> None:
    """The sweep table and what each layout is."""
    headers = ["layout", "rows on tags", "log rows", "pairs", "ours rows/s", "duckdb rows/s"]
    headers += ["ours/duckdb", "cpu ours/duckdb", "peak RSS MB ours / duckdb", "match"]
    print()
    print(format_table(headers, sweep_rows(sweep["points"])))
    for name, text in sweep["layouts"].items():
        print(f"  {name}: {text}")
    ratios = [p["ours_over_duckdb_throughput"] for p in sweep["points"]]
    print(f"ours/duckdb: min {min(ratios):.2f}, max {max(ratios):.2f} over {len(ratios)} points")
    print("cpu ours/duckdb: duckdb's CPU seconds (both threads) over ours, same runs")
