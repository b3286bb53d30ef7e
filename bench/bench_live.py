"""Live benchmark (issue #18 item 6): the item index's cost to the
nightly run and its size against the logs, and a tag's backfill time for a popular and a rare
item, next to a backfill without the index and the item-sorted aggregate layout measured on one
partition; plus the feed read's cost with and without the live exposure key.

    make bench-live                                          # 1M rows a day x 30 days
    make bench-live BENCH_ARGS="--rows-per-day 10000000 --days 30"    # the 300M-row figure

Logs are generated here (numpy, seeded): items appear each day with a heavy-tailed popularity
and are seen mostly in their first days; rows are in time order, written as platform writers do
(pyarrow defaults: snappy, dictionary-encoded ids), ``--files-per-day`` files of row groups of
``--row-group`` rows. The rumor catalog comes from a tiny synthetic world. Runs are in one
embedded Redis (durable, as deployed); RankFeed runs over real gRPC against a server in this
process, its event-loop thread's CPU measured with the live key read and without. The time to
served is measured from the return of a real `debunk tag add` process (the live tag, then the
backfill), and the time to gone from the return of `debunk rumor withdraw`, on RankFeed and
SearchTop. Results: bench/out/bench_live.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command_line, format_table, machine  # noqa: E402
from domain.vocab import ACTIONS, SURFACES  # noqa: E402

OUT = ROOT / "bench" / "out" / "live"
REPORT = ROOT / "bench" / "out" / "bench_live.json"
START = date(2026, 11, 1)
DAY_US = 86_400_000_000
AGE_WEIGHTS = np.array([1.0, 0.35, 0.12, 0.04])  # an item is seen mostly in its first days
ACTION_P = np.array([0.80, 0.10, 0.05, 0.03, 0.02])
SURFACE_P = np.array([0.55, 0.15, 0.12, 0.10, 0.05, 0.03])


# --- inputs ----------------------------------------------------------------------------------


def generate_logs(out: Path, days: int, rows_per_day: int, seed: int, files: int, rg: int) -> dict:
    """Write ``days`` partitions of ``rows_per_day`` rows under ``out/exposures``; returns the
    item ids and exposure counts the bench picks its popular and rare items from."""
    rng = np.random.default_rng(seed)
    users = max(1000, rows_per_day // 5)
    per_day = max(500, rows_per_day // 200)
    user_ids = pa.array([f"u{i:09d}" for i in range(users)])
    item_ids = pa.array([f"i{i:09d}" for i in range(per_day * days)])
    popularity = rng.lognormal(0.0, 2.0, per_day * days)
    counts = np.zeros(per_day * days, dtype=np.int64)
    surfaces, actions = pa.array(SURFACES), pa.array(ACTIONS)
    for d in range(days):
        first = max(0, d - len(AGE_WEIGHTS) + 1) * per_day
        alive = np.arange(first, (d + 1) * per_day)
        age = d - alive // per_day
        weights = popularity[alive] * AGE_WEIGHTS[age]
        items = alive[rng.choice(len(alive), size=rows_per_day, p=weights / weights.sum())]
        counts += np.bincount(items, minlength=len(counts))
        day_us = ((START + timedelta(days=d)) - date(1970, 1, 1)).days * DAY_US
        ts = np.sort(rng.integers(day_us, day_us + DAY_US, rows_per_day))
        table = pa.table(
            {
                "user_id": user_ids.take(pa.array(rng.integers(0, users, rows_per_day))),
                "item_id": item_ids.take(pa.array(items)),
                "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "surface": surfaces.take(pa.array(rng.choice(6, rows_per_day, p=SURFACE_P))),
                "action": actions.take(pa.array(rng.choice(5, rows_per_day, p=ACTION_P))),
            }
        )
        folder = out / "exposures" / f"dt={(START + timedelta(days=d)).isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        step = -(-rows_per_day // files)
        for f in range(files):
            part = table.slice(f * step, step)
            pq.write_table(part, folder / f"part-{f:03d}.parquet", row_group_size=rg)
        print(f"  day {d + 1}/{days} written", flush=True)
    np.save(out / "item_counts.npy", counts)
    return {"counts": counts, "per_day": per_day}


def write_catalog(out: Path, counts: np.ndarray, per_day: int, seed: int) -> dict[str, Any]:
    """Rumors and debunks from a tiny synthetic world; hand tags on ~0.5% of the items (the
    kept share of a realistic night), never on the popular and rare items the bench backfills."""
    from offline.synth.world import synthesize

    tiny = out / "tiny"
    if not (tiny / "world.json").exists():
        synthesize(tiny, users=2000, days=2, seed=seed, rumors=60)
    for name in ("rumors.jsonl", "debunks.jsonld"):
        shutil.copy(tiny / name, out / name)
    rumors = [json.loads(x) for x in (out / "rumors.jsonl").read_text().splitlines() if x]
    reviewed = {cr["itemReviewed"]["identifier"]
                for cr in json.loads((out / "debunks.jsonld").read_text())}  # fmt: skip
    confirmed = sorted(r["rumor_id"] for r in rumors
                       if r["status"] == "confirmed" and r["rumor_id"] in reviewed)  # fmt: skip
    days = len(counts) // per_day
    mid = (days // 2) * per_day  # items created mid-window
    ranked = mid + np.argsort(-counts[mid : mid + per_day], kind="stable")
    popular, second = int(ranked[0]), int(ranked[1])
    seen = np.flatnonzero((counts >= 5) & (counts <= 20))
    rare = int(seen[len(seen) // 2])
    rng = np.random.default_rng(seed + 1)
    tagged = rng.choice(len(counts), size=max(10, len(counts) // 200), replace=False)
    tagged = tagged[(tagged != popular) & (tagged != rare) & (tagged != second)]
    table = pa.table(
        {
            "item_id": [f"i{i:09d}" for i in tagged],
            "rumor_id": [confirmed[i % len(confirmed)] for i in range(len(tagged))],
            "source": ["manual"] * len(tagged),
            "score": [1.0] * len(tagged),
        }
    )
    pq.write_table(table, out / "tagged_items.parquet")
    return {
        "popular": (f"i{popular:09d}", int(counts[popular]), confirmed[0]),
        "rare": (f"i{rare:09d}", int(counts[rare]), confirmed[1]),
        "served": (f"i{second:09d}", int(counts[second]), confirmed[2]),
        "tagged_items": len(tagged),
    }


def folder_bytes(folder: Path, pattern: str = "*.parquet") -> int:
    return sum(f.stat().st_size for f in folder.rglob(pattern))


# --- measurements ----------------------------------------------------------------------------


def nightly(out: Path, day: date, settings: Any) -> dict[str, Any]:
    """One nightly run (no training: the generated world has no debunk events)."""
    from offline.nightly.job import run_nightly

    s = run_nightly(out, day, out / "state", settings, train=False)
    total, index = s["elapsed_s"], s["item_index"]["seconds"]
    return {
        "run_date": day.isoformat(),
        "scanned": len(s["state"]["partitions"]["scanned"]),
        "rows_read": s["state"]["join"]["rows_read"],
        "pairs": s["state"]["pairs"],
        "nightly_s": total,
        "index_s": index,
        "index_built": len(s["item_index"]["built"]),
        "added": round(index / max(1e-9, total - index), 3),
    }


def backfill(out: Path, item: str, rumor: str, client: Any, day: date, index: bool) -> dict:
    """One backfill of ``item`` -> ``rumor`` with the item index, or without it (the
    baseline: every partition read whole, by the same scan)."""
    from offline.nightly.backfill import backfill_tag

    moved = out / "state" / "item_index.off"
    if not index:
        (out / "state" / "item_index").rename(moved)
    try:
        now = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12)
        s = backfill_tag(out, out / "state", [item], rumor, client, now, 30)
    finally:
        if not index:
            moved.rename(out / "state" / "item_index")
    keep = ("seconds", "lookup_s", "scan_s", "users", "rows_read", "rows_kept", "row_groups_read",
            "row_groups_total", "indexed", "items")  # fmt: skip
    return {k: s[k] for k in keep} | {"write_s": s["write"]["seconds"]}


def aggregate_layout(out: Path, dt: str, item: str) -> dict[str, Any]:
    """The alternative layout on one partition: per (item, user) aggregates of the day sorted by
    item (zstd, 64k-row groups, statistics), its size, build and lookup times."""
    from offline.io import logs as logfiles
    from offline.nightly.item_index import build_index, write_index

    files = logfiles.partition_files(out / "exposures", dt)
    started = time.perf_counter()
    t = pq.read_table(files, columns=["user_id", "item_id", "ts", "surface", "action"])
    t = t.append_column("a", pc.index_in(t["action"], value_set=pa.array(ACTIONS)))
    for s in SURFACES:
        t = t.append_column(f"on_{s}", pc.equal(t["surface"], s))
    flags = [(f"on_{s}", "any") for s in SURFACES]
    agg = t.group_by(["item_id", "user_id"], use_threads=False).aggregate(
        [("ts", "count"), ("ts", "min"), ("ts", "max"), ("a", "max"), *flags]
    ).sort_by([("item_id", "ascending"), ("user_id", "ascending")])  # fmt: skip
    path = out / "alt" / f"agg-{dt}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(agg, path, compression="zstd", row_group_size=65_536)
    agg_s = time.perf_counter() - started
    started = time.perf_counter()
    pointers = build_index(files)
    ptr = write_index(pointers, out / "alt" / f"ptr-{dt}.parquet")
    ptr_s = time.perf_counter() - started
    started = time.perf_counter()
    hit = pq.read_table(path, filters=pc.field("item_id") == item)
    lookup_s = time.perf_counter() - started
    logs = sum(f.stat().st_size for f in files)
    return {
        "dt": dt, "rows": t.num_rows, "agg_rows": agg.num_rows, "log_mb": logs / 1e6,
        "agg_mb": path.stat().st_size / 1e6, "agg_vs_logs": path.stat().st_size / logs,
        "agg_build_s": round(agg_s, 2), "pointer_mb": ptr / 1e6, "pointer_vs_logs": ptr / logs,
        "pointer_build_s": round(ptr_s, 2), "agg_lookup_s": round(lookup_s, 4),
        "agg_lookup_rows": hit.num_rows,
    }  # fmt: skip


@contextlib.contextmanager
def served(settings: Any) -> Iterator[tuple[Any, Any, int]]:
    """A DebunkServer on loopback in this process (its loop on a thread), once it serves the
    current snapshot: (stub, server, the loop thread's CPU clock id)."""
    import threading

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from debunk.v1 import debunk_pb2_grpc as pb_grpc
    from service.config import ServerConfig
    from service.server import DebunkServer

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def call(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    async def start() -> tuple[DebunkServer, int]:
        server = DebunkServer(settings, ServerConfig(port=0, poll_interval=0.2, grace_s=1.0))
        return server, await server.start()

    server, port = call(start())
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(600):  # poll readiness: SERVING once the snapshot is pinned
                if health.Check(health_pb2.HealthCheckRequest()).status == 1:
                    break
                time.sleep(0.05)
            yield (
                pb_grpc.DebunkServiceStub(channel),
                server,
                time.pthread_getcpuclockid(
                    thread.ident  # type: ignore[arg-type]
                ),
            )
    finally:
        call(server.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def rankfeed_cost(settings: Any, groups: dict[str, list[str]], rounds: int) -> dict[str, Any]:
    """Server CPU (its event-loop thread) and wall time per RankFeed over real gRPC, with the
    live exposure key read and without (the reader's switch), alternating in the same run."""
    from debunk.v1 import debunk_pb2 as pb

    out: dict[str, Any] = {}
    with served(settings) as (stub, server, clock):
        for name, users in groups.items():
            cpu = {False: 0.0, True: 0.0}
            wall = {False: 0.0, True: 0.0}
            for r in range(rounds + 1):
                for flag in (False, True) if r % 2 == 0 else (True, False):
                    server._reader.live = flag  # the benchmark's switch (private on purpose)
                    c0, w0 = time.clock_gettime(clock), time.perf_counter()
                    for u in users:
                        stub.RankFeed(pb.RankFeedRequest(user_id=u, limit=5), timeout=5)
                    if r:  # round 0 warms up
                        cpu[flag] += time.clock_gettime(clock) - c0
                        wall[flag] += time.perf_counter() - w0
            n = rounds * len(users)
            out[name] = {
                "calls": n,
                "server_cpu_us_without": round(cpu[False] / n * 1e6, 1),
                "server_cpu_us_with": round(cpu[True] / n * 1e6, 1),
                "cpu_ratio": round(cpu[True] / cpu[False], 3),
                "wall_us_without": round(wall[False] / n * 1e6, 1),
                "wall_us_with": round(wall[True] / n * 1e6, 1),
            }
        server._reader.live = True
    return out


def time_to_served(
    settings: Any, tag: Callable[[], Any], audience: list[str], rumor: str, query: str
) -> dict[str, Any]:
    """Run ``tag`` (the real `debunk tag add`, a process) and, from its return, poll RankFeed
    until every user of ``audience`` (a sample that includes the audience's last user) is served
    a card of ``rumor``; then `debunk rumor withdraw` and, from its return, poll until no sampled
    user's RankFeed and no SearchTop of ``query`` (the rumor's claim) carries it."""
    from debunk.v1 import debunk_pb2 as pb

    def carries(reply: Any) -> bool:
        return any(c.rumor_id == rumor for c in reply.cards)

    with served(settings) as (stub, _, _):
        started = time.perf_counter()
        tag()
        returned = time.perf_counter()
        waiting = list(audience)
        while waiting and time.perf_counter() - returned < 120:
            if carries(stub.RankFeed(pb.RankFeedRequest(user_id=waiting[0], limit=10), timeout=5)):
                waiting.pop(0)
        done = time.perf_counter()
        searched = carries(stub.SearchTop(pb.SearchTopRequest(query=query, limit=3), timeout=5))
        withdraw = run_cli(settings, "rumor", "withdraw", rumor, "--reason", "bench")
        gone_at = time.perf_counter()
        showing = list(audience)
        while time.perf_counter() - gone_at < 60:
            showing = [u for u in showing if carries(
                stub.RankFeed(pb.RankFeedRequest(user_id=u, limit=10), timeout=5))]  # fmt: skip
            search = carries(stub.SearchTop(pb.SearchTopRequest(query=query, limit=3), timeout=5))
            if not showing and not search:
                break
        gone = time.perf_counter()
    return {"tag_s": round(returned - started, 3), "served_after_return_s":
            round(done - returned, 3), "users_checked": len(audience),
            "not_served": len(waiting), "search_served": searched,
            "withdraw_s": round(withdraw, 3), "gone_after_return_s": round(gone - gone_at, 3),
            "still_served": len(showing)}  # fmt: skip


def run_cli(settings: Any, *argv: str) -> float:
    """Run ``debunk ARGV`` as a process against ``settings``' Redis; its wall time (fails on a
    non-zero exit)."""
    import os
    import subprocess

    env = {**os.environ, "REDIS_URL": settings.url}
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("debunk")), *argv, "--actor", "bench"],
                   env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def served_after_tag(out: Path, picked: tuple, settings: Any, day: date) -> dict[str, Any]:
    """time_to_served for one more popular item: its rumor's audience is computed first (not
    written), then `debunk tag add` (the live tag, then the backfill) runs as a process, and a
    sample of the users the snapshot does not know (their feed can only be this card), ending
    with the last one, waits for the card; then the rumor is withdrawn."""
    from offline.nightly.backfill import compute_backfill

    item, _, rumor = picked
    state, _ = compute_backfill(out / "exposures", out / "state", [item], rumor, day, 30)
    known = pq.read_table(out / "state" / "current" / "exposures.parquet", columns=["user_id"])
    known_users = set(pc.unique(known["user_id"]).to_pylist())
    users = sorted(u for u in state["user_id"].to_pylist() if u not in known_users)
    sample = [*users[:: max(1, len(users) // 200)], users[-1]]  # new to the snapshot only
    now = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12)
    rumors = [json.loads(x) for x in (out / "rumors.jsonl").read_text().splitlines() if x]
    claim = next(r["claim"] for r in rumors if r["rumor_id"] == rumor)

    def tag() -> None:
        run_cli(settings, "tag", "add", item, rumor, "--data", str(out), "--state",
                str(out / "state"), "--now", now.isoformat())  # fmt: skip

    timing = time_to_served(settings, tag, sample, rumor, claim)
    return {"item": item, "audience": len(state), "new_users": len(users), **timing}


def live_users(client: Any, limit: int) -> list[str]:
    """Users that have a live exposure hash (the popular backfill's audience)."""
    from feature_store import keys

    out = []
    for key in client.scan_iter(match=keys.live_exposures_prefix() + b"*", count=1000):
        out.append(key.decode().split("{", 1)[1].rstrip("}"))
        if len(out) >= limit:
            break
    return sorted(out)


# --- main ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    from feature_store.connection import RedisSettings
    from feature_store.embedded import EmbeddedRedis

    out = OUT / f"{args.rows_per_day}x{args.days}-s{args.seed}"
    if not (out / "item_counts.npy").exists():
        shutil.rmtree(out, ignore_errors=True)
        print(f"generating {args.days} days x {args.rows_per_day} rows -> {out}", flush=True)
        gen = generate_logs(out, args.days, args.rows_per_day, args.seed, args.files_per_day,
                            args.row_group)  # fmt: skip
    else:
        gen = {"counts": np.load(out / "item_counts.npy"),
               "per_day": max(500, args.rows_per_day // 200)}  # fmt: skip
    picked = write_catalog(out, gen["counts"], gen["per_day"], args.seed)
    shutil.rmtree(out / "state", ignore_errors=True)
    shutil.rmtree(out / "alt", ignore_errors=True)
    last = START + timedelta(days=args.days - 1)
    result: dict[str, Any] = {"machine": machine(), "command": command_line(), "picked": picked}
    with EmbeddedRedis(out / "redis") as server:
        settings = RedisSettings(url=server.url)
        client = settings.sync_client()
        client.flushdb()
        print("nightly, cold (the window but its last day)", flush=True)
        result["nightly_cold"] = nightly(out, last - timedelta(days=1), settings)
        print("nightly, incremental (one new day)", flush=True)
        result["nightly_incremental"] = nightly(out, last, settings)
        logs_b = folder_bytes(out / "exposures")
        index_b = folder_bytes(out / "state" / "item_index")
        result["size"] = {"logs_mb": logs_b / 1e6, "index_mb": index_b / 1e6,
                          "index_vs_logs": index_b / logs_b,
                          "rows": int(gen["counts"].sum())}  # fmt: skip
        result["backfill"] = {}
        for kind in ("popular", "rare"):
            item, seen, rumor = picked[kind]
            for index in (True, False):
                print(f"backfill {kind} item {item} ({seen} rows), index={index}", flush=True)
                result["backfill"][f"{kind}_{'index' if index else 'no_index'}"] = backfill(
                    out, item, rumor, client, last, index
                )
        result["time_to_served"] = served_after_tag(out, picked["served"], settings, last)
        live = live_users(client, args.feed_users)
        served = pq.read_table(out / "state" / "current" / "exposures.parquet", columns=["user_id"])
        plain = [u for u in pc.unique(served["user_id"]).to_pylist()[::7] if u not in set(live)]
        groups = {"live": live, "snapshot_only": plain[: args.feed_users]}
        result["rankfeed"] = rankfeed_cost(settings, groups, args.feed_rounds)
        client.close()
    mid = (START + timedelta(days=args.days // 2)).isoformat()
    result["layouts"] = aggregate_layout(out, mid, picked["popular"][0])
    return result


def report(r: dict[str, Any]) -> None:
    rows = [[k, v["scanned"], v["rows_read"], v["pairs"], v["nightly_s"], v["index_s"],
             v["added"]] for k, v in (("cold", r["nightly_cold"]),
                                      ("incremental", r["nightly_incremental"]))]  # fmt: skip
    print(format_table(["nightly", "partitions scanned", "rows read", "pairs", "nightly s",
                        "index s", "index/rest"], rows))  # fmt: skip
    s = r["size"]
    print(f"\nlogs {s['rows']:,} rows, {s['logs_mb']:.1f} MB; index {s['index_mb']:.2f} MB "
          f"= {s['index_vs_logs']:.4f} of the logs")  # fmt: skip
    b = r["backfill"]
    rows = [[k, v["seconds"], v["lookup_s"], v["scan_s"], v["write_s"], v["users"],
             v["rows_read"], f"{v['row_groups_read']}/{v['row_groups_total']}"]
            for k, v in b.items()]  # fmt: skip
    print()
    print(format_table(["backfill", "total s", "lookup s", "scan s", "write s", "users",
                        "rows read", "row groups"], rows))  # fmt: skip
    for kind in ("popular", "rare"):
        with_i, without = b[f"{kind}_index"], b[f"{kind}_no_index"]
        print(f"{kind}: with index / without = {with_i['seconds'] / without['seconds']:.3f}")
    rows = [[k, v["calls"], v["server_cpu_us_without"], v["server_cpu_us_with"],
             v["cpu_ratio"], v["wall_us_without"], v["wall_us_with"]]
            for k, v in r["rankfeed"].items()]  # fmt: skip
    print()
    print(format_table(["RankFeed users", "calls", "server CPU us without", "with", "ratio",
                        "wall us without", "with"], rows))  # fmt: skip
    t = r["time_to_served"]
    print(
        f"\n`debunk tag add` of {t['item']} (audience {t['audience']:,}): {t['tag_s']} s "
        f"(live tag + backfill), then {t['users_checked']} sampled users (the last included) "
        f"served within {t['served_after_return_s']} s of its return ({t['not_served']} not "
        f"served); `debunk rumor withdraw`: {t['withdraw_s']} s, then the card gone from their "
        f"RankFeed and from SearchTop of its claim (served before: {t['search_served']}) "
        f"within {t['gone_after_return_s']} s of its return ({t['still_served']} still served)"
    )
    a = r["layouts"]
    print(f"\none partition ({a['dt']}, {a['rows']:,} rows, {a['log_mb']:.1f} MB of logs): "
          f"item-sorted (item, user) aggregates {a['agg_rows']:,} rows, {a['agg_mb']:.1f} MB "
          f"({a['agg_vs_logs']:.3f} of the logs), built in {a['agg_build_s']} s; row-group "
          f"pointers {a['pointer_mb']:.2f} MB ({a['pointer_vs_logs']:.4f}), built in "
          f"{a['pointer_build_s']} s; aggregate lookup of the popular item "
          f"{a['agg_lookup_s']} s ({a['agg_lookup_rows']} rows)")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows-per-day", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--files-per-day", type=int, default=2)
    p.add_argument("--row-group", type=int, default=1 << 20, help="rows per log row group")
    p.add_argument("--feed-users", type=int, default=300)
    p.add_argument("--feed-rounds", type=int, default=6)
    args = p.parse_args(argv)
    if args.days < 3 or args.rows_per_day < 10_000:
        p.error("--days must be at least 3 and --rows-per-day at least 10000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    result = run(args)
    result["bench_s"] = round(time.perf_counter() - started, 1)
    report(result)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(result, indent=2, default=str))
    print(f"results: {REPORT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
