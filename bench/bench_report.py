"""Benchmark of the A/B reach report (``make bench-report``).

Synthesises (once, cached under bench/out/worlds) a world that runs a planted experiment, then
times in child processes of their own, with 2 Arrow threads:

- ``scan``: a plain projected scan of the same exposure and event files (the baseline: the
  report cannot beat reading its inputs);
- ``report``: ``offline.report.reach.reach_report`` end to end, tables and HTML written; then
  its per-surface pass (``reach_by_surface``) once more alone, to show what it adds.

Prints seconds, rows/s, peak RSS of each and their ratio, and the planted treatment effect next
to the recovered one. ``--users 10000000 --days 30 --mean-daily 1`` is the scale in the README.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    command_line,
    emit,
    format_table,
    machine,
    peak_rss_mb,
    run_child,
    timed,
)

WORLDS = ROOT / "bench" / "out" / "worlds"
SCANNED = {
    "exposures": ["user_id", "item_id", "ts", "surface", "action"],
    "debunk_events": ["user_id", "rumor_id", "event", "ts", "experiment", "arm"],
}
ARMS = "control:0.45,treatment:0.45,holdout:0.1:holdout"


def world_dir(users: int, days: int, seed: int, mean_daily: float) -> Path:
    return (
        WORLDS / f"report-{users}-{days}-{seed}"
        if mean_daily == 1.0
        else (WORLDS / f"report-{users}-{days}-{seed}-m{mean_daily:g}")
    )


def ensure_world(users: int, days: int, seed: int, mean_daily: float, lift: float) -> Path:
    """The cached world, synthesised first when missing or made with other parameters."""
    from offline.synth.world import PlantedExperiment, synthesize

    out = world_dir(users, days, seed, mean_daily)
    planted = out / "experiment.json"
    if planted.exists():
        lifts = json.loads(planted.read_text())["planted"]["lifts"]
        if lifts == {"treatment": lift}:
            return out
    print(f"synthesising {out} (once) ...", file=sys.stderr)
    synthesize(out, users=users, days=days, seed=seed, mean_daily=mean_daily, progress=True,
               experiment=PlantedExperiment("reach", ARMS, {"treatment": lift}))  # fmt: skip
    return out


def files(world: Path) -> list[str]:
    return [str(p) for sub in ("exposures", "debunk_events")
            for p in sorted((world / sub).glob("dt=*/*.parquet"))]  # fmt: skip


def child_scan(world: Path) -> dict:
    import pyarrow as pa
    import pyarrow.dataset as ds

    pa.set_cpu_count(2)
    pa.set_io_thread_count(2)
    rows = 0
    with timed() as t:
        for sub, cols in SCANNED.items():
            paths = [p for p in files(world) if f"/{sub}/" in p]
            for batch in ds.dataset(paths, format="parquet").to_batches(columns=cols):
                rows += batch.num_rows
    return {"seconds": round(t.seconds, 3), "rows": rows, "peak_rss_mb": peak_rss_mb()}


def child_report(world: Path, days: int) -> dict:
    import pyarrow as pa

    from offline.report.reach import reach_report

    pa.set_cpu_count(2)
    pa.set_io_thread_count(2)
    start = date.fromisoformat(json.loads((world / "world.json").read_text())["start"])
    out = Path(tempfile.mkdtemp(prefix="reach-"))
    try:
        with timed() as t:
            report = reach_report(world, world / "experiment.json", start,
                                  start + timedelta(days=days - 1), progress=False)  # fmt: skip
            report.write(out / "report")
        from offline.report.outcomes import day_range
        from offline.report.surfaces import reach_by_surface

        days_read = day_range(start, start + timedelta(days=days - 1))
        with timed() as surfaces:  # the per-surface pass alone, again: what it adds
            reach_by_surface(world / "debunk_events", days_read, report.outcomes.pairs)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    row = report.comparisons.set_index(["arm", "metric"]).loc[("treatment", "pair_reach")]
    s = report.summary
    return {
        "seconds": round(t.seconds, 3),
        "surfaces_seconds": round(surfaces.seconds, 3),
        "rows": s["exposure_rows_read"] + s["event_rows_read"],
        "pairs": s["pairs"],
        "exposed_users": int(report.arms["exposed_users"].sum()),
        "peak_rss_mb": peak_rss_mb(),
        "rel_lift": [round(float(row[k]), 4) for k in ("rel_lift", "rel_lift_lo", "rel_lift_hi")],
        "srm_p": report.srm["p_value"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mean-daily", type=float, default=1.0)
    p.add_argument("--lift", type=float, default=0.2, help="planted serving lift of treatment")
    p.add_argument("--child", choices=["scan", "report"])
    p.add_argument("--world")
    args = p.parse_args()
    if args.child:
        world = Path(args.world)
        emit(child_scan(world) if args.child == "scan" else child_report(world, args.days))
        return 0
    world = ensure_world(args.users, args.days, args.seed, args.mean_daily, args.lift)
    results = {}
    for engine in ("scan", "report"):
        cmd = [sys.executable, __file__, "--child", engine, "--world", str(world),
               "--days", str(args.days)]  # fmt: skip
        done = run_child(cmd)
        results[engine] = {**done.report, "maxrss_mb": done.maxrss_mb}
    planted = json.loads((world / "experiment.json").read_text())["planted"]
    expected = planted["expected_relative_reach"]["treatment"] - 1
    rows = [
        [e, r["rows"], r["seconds"], r["rows"] / r["seconds"], r["maxrss_mb"]]
        for e, r in results.items()
    ]
    print(f"# {command_line()}\n# {json.dumps(machine())}")
    print(format_table(["engine", "rows", "seconds", "rows/s", "peak RSS MB"], rows))
    rep = results["report"]
    print(
        f"report/scan throughput ratio {results['scan']['seconds'] / rep['seconds']:.2f}; "
        f"{rep['pairs']:,} exposed pairs of {rep['exposed_users']:,} users; "
        f"treatment pair-reach lift {rep['rel_lift'][0]:+.3f} "
        f"[{rep['rel_lift'][1]:+.3f}, {rep['rel_lift'][2]:+.3f}] (planted {expected:+.3f}); "
        f"SRM p = {rep['srm_p']:.3g}; the per-surface pass {rep['surfaces_seconds']:.2f} s "
        f"({rep['surfaces_seconds'] / rep['seconds']:.2f} of the report)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
