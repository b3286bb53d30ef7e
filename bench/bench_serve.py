"""Serving benchmark: RankFeed throughput against an empty unary RPC (the standard health Check,
served by the same server) in the same run, RankFeed latency at half of its maximum throughput,
RankFeedBatch users/s, and SearchTop / GroupWarnings latency at half of their own maximum
throughput (or at ``--pinned-rate``). Load generator and server share this machine.

    make bench-serve
    .venv/bin/python bench/bench_serve.py --users 300000 --rumors 30000 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path

import grpc
import numpy as np
import pyarrow.parquet as pq
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from debunk.v1 import debunk_pb2 as pb  # noqa: E402
from debunk.v1 import debunk_pb2_grpc as pb_grpc  # noqa: E402
from feature_store.connection import RedisSettings  # noqa: E402
from feature_store.embedded import EmbeddedRedis, free_port  # noqa: E402
from offline.nightly import run_nightly  # noqa: E402
from offline.synth import synthesize  # noqa: E402


def percentiles(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3)}  # fmt: skip


async def closed_loop(
    call: Callable[[int], Awaitable[object]], concurrency: int, seconds: float
) -> dict[str, float]:
    """As many calls as ``concurrency`` workers can make in ``seconds``: the maximum rate."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = w
        while time.perf_counter() < stop:
            await call(i)
            done += 1
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return {"calls": done, "per_s": round(done / (time.perf_counter() - started))}


async def open_loop(
    call: Callable[[int], Awaitable[object]], rate: float, seconds: float
) -> dict[str, float]:
    """Calls started at a fixed ``rate`` for ``seconds``; latency of each, queueing included."""
    latencies: list[float] = []
    tasks = []
    started = time.perf_counter()
    n = int(rate * seconds)

    async def one(i: int, due: float) -> None:
        await call(i)
        latencies.append(time.perf_counter() - due)

    for i in range(n):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return {"rate": round(rate), "calls": n, **percentiles(latencies)}


def _pinned_rate(args: argparse.Namespace, at_max: dict) -> float:
    """The open-loop rate for SearchTop/GroupWarnings: --pinned-rate, or half their max."""
    return args.pinned_rate if args.pinned_rate > 0 else at_max["per_s"] / 2


async def run_load(
    target: str, users: list[str], texts: list[str], args: argparse.Namespace
) -> dict[str, object]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.DebunkServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        ping_req = health_pb2.HealthCheckRequest(service="")

        async def ping(i: int) -> object:
            return await health.Check(ping_req, timeout=5)

        async def feed(i: int) -> object:
            return await stub.RankFeed(
                pb.RankFeedRequest(user_id=users[i % len(users)], limit=5), timeout=5
            )

        batch_size = 1000

        async def batch(i: int) -> object:
            start = (i * batch_size) % max(1, len(users) - batch_size)
            ids = users[start : start + batch_size]
            return await stub.RankFeedBatch(pb.RankFeedBatchRequest(user_ids=ids, limit=5),
                                            timeout=30)  # fmt: skip

        async def search(i: int) -> object:
            return await stub.SearchTop(
                pb.SearchTopRequest(
                    query=texts[i % len(texts)][:200], user_id=users[i % len(users)]
                ),
                timeout=5,
            )

        async def group(i: int) -> object:
            messages = [
                pb.GroupMessage(message_id=f"m{j}", text=texts[(i * 5 + j) % len(texts)][:500])
                for j in range(5)
            ]
            members = [users[(i * 20 + j) % len(users)] for j in range(20)]
            return await stub.GroupWarnings(
                pb.GroupWarningsRequest(group_id="g1", messages=messages, member_ids=members),
                timeout=5,
            )

        await closed_loop(feed, args.concurrency, 1.0)  # warm up
        empty = await closed_loop(ping, args.concurrency, args.seconds)
        rank = await closed_loop(feed, args.concurrency, args.seconds)
        empty2 = await closed_loop(ping, args.concurrency, args.seconds)
        best_empty = max(empty["per_s"], empty2["per_s"])
        half = await open_loop(feed, rank["per_s"] / 2, args.seconds)
        # The floor of this harness: the empty RPC at the same rate, same client, same cores.
        ping_half = await open_loop(ping, rank["per_s"] / 2, args.seconds)
        batches = await closed_loop(batch, 4, args.seconds)
        search_max = await closed_loop(search, args.concurrency, args.seconds)
        searches = await open_loop(search, _pinned_rate(args, search_max), args.seconds)
        group_max = await closed_loop(group, args.concurrency, args.seconds)
        groups = await open_loop(group, _pinned_rate(args, group_max), args.seconds)
        return {
            "empty_unary_per_s": best_empty,
            "rank_feed_per_s": rank["per_s"],
            "rank_feed_over_empty": round(rank["per_s"] / best_empty, 3),
            "rank_feed_at_half_max": half,
            "empty_unary_at_that_rate": ping_half,
            "rank_feed_batch_users_per_s": round(batches["per_s"] * batch_size),
            "search_top_max_per_s": search_max["per_s"],
            "search_top": searches,
            "group_warnings_max_per_s": group_max["per_s"],
            "group_warnings_5_messages_20_members": groups,
        }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=300_000)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--rumors", type=int, default=30_000, help="rumor library size")
    p.add_argument(
        "--pinned-rate",
        type=float,
        default=0.0,
        help="SearchTop / GroupWarnings calls per second (open loop); 0: half of each one's max",
    )
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    start = date.today() - timedelta(days=args.days)
    synthesize(work / "world", users=args.users, days=args.days, seed=args.seed, start=start,
               rumors=args.rumors)  # fmt: skip
    with EmbeddedRedis(work / "redis") as server:
        night = run_nightly(work / "world", start + timedelta(days=args.days - 1), work / "state",
                            RedisSettings(url=server.url))  # fmt: skip
        exposed = pq.read_table(work / "state" / "current" / "exposures.parquet")
        users = exposed["user_id"].unique().to_pylist()
        users += [f"u{i:08d}" for i in range(0, args.users, 7)]  # unexposed users too
        np.random.default_rng(args.seed).shuffle(users)
        items = pq.read_table(work / "world" / "items.parquet", columns=["text"])
        texts = items["text"].to_pylist()  # rumor copies and ordinary posts, as people search
        np.random.default_rng(args.seed).shuffle(texts)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "debunk.cli", "--log-level", "WARNING", "serve",
             "--port", str(port), "--feed-daily-cap", "1000000"],
            env={**os.environ, "REDIS_URL": server.url},
        )  # fmt: skip
        try:
            target = f"127.0.0.1:{port}"
            with grpc.insecure_channel(target) as ch:
                from debunk.demo import wait_until_serving

                wait_until_serving(ch, timeout=300)  # the library index is built first
            result = asyncio.run(run_load(target, users, texts, args))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "users_in_snapshot": night["state"]["pairs"],
        "exposed_users": len(exposed["user_id"].unique()),
        **result,
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_serve.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
