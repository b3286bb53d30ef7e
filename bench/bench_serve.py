"""Serving benchmark: RankFeed throughput against an empty unary RPC (the standard health Check,
served by the same server) in the same run, RankFeed latency at half of its maximum throughput,
RankFeedBatch users/s, and SearchTop / GroupWarnings latency at half of their own maximum
throughput (or at ``--pinned-rate``). Load generator and server share this machine.

The server runs ``--workers`` processes on one port (default: one per core, as deployed); the
load generator spreads its calls over ``--channels`` connections, so every worker gets some
(the kernel balances connections, not calls), with ``--batches-in-flight`` RankFeedBatch calls
at once.
The RankFeed/empty ratio is the median of ``--rounds`` alternating rounds of the two (the machine
is shared and noisy; a round's two rates are measured seconds apart), and the server's own CPU
time per call (all workers, from /proc) is reported beside each rate.

    make bench-serve
    .venv/bin/python bench/bench_serve.py --users 300000 --rumors 30000 --seconds 5 --workers 1
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

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


class ServerCpu:
    """CPU seconds used so far by the server process and its worker children (Linux /proc)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")

    def _pids(self) -> list[int]:
        pids = [self.pid]
        for task in Path(f"/proc/{self.pid}/task").glob("*/children"):
            pids += [int(p) for p in task.read_text().split()]
        return pids

    def seconds(self) -> float:
        total = 0
        for pid in self._pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / self.tick


async def measured(
    cpu: ServerCpu, run: Awaitable[dict[str, float]], users_per_call: int = 1
) -> dict[str, float]:
    """``run``'s result plus the server's CPU microseconds per call (per user for batches)."""
    before = cpu.seconds()
    result = await run
    spent = cpu.seconds() - before
    result["server_cpu_us_per_call"] = round(spent / max(1, result["calls"]) * 1e6, 1)
    if users_per_call > 1:
        result["server_cpu_us_per_user"] = round(
            spent / max(1, result["calls"] * users_per_call) * 1e6, 1
        )
    return result


class RoundRobin:
    """Stubs over several channels, used in turn (each channel is its own connection)."""

    def __init__(self, stubs: list[Any]) -> None:
        self.stubs = stubs
        self.turn = 0

    def next(self) -> Any:
        self.turn += 1
        return self.stubs[self.turn % len(self.stubs)]


async def run_load(
    target: str, users: list[str], texts: list[str], args: argparse.Namespace, cpu: ServerCpu
) -> dict[str, object]:
    options = [("grpc.use_local_subchannel_pool", 1)]  # one connection per channel
    channels = [
        grpc.aio.insecure_channel(target, options=[*options, ("bench.channel", i)])
        for i in range(args.channels)
    ]
    try:
        stubs = RoundRobin([pb_grpc.DebunkServiceStub(c) for c in channels])
        healths = RoundRobin([health_pb2_grpc.HealthStub(c) for c in channels])
        ping_req = health_pb2.HealthCheckRequest(service="")

        async def ping(i: int) -> object:
            return await healths.next().Check(ping_req, timeout=5)

        async def feed(i: int) -> object:
            return await stubs.next().RankFeed(
                pb.RankFeedRequest(user_id=users[i % len(users)], limit=5), timeout=5
            )

        batch_size = 1000

        async def batch(i: int) -> object:
            start = (i * batch_size) % max(1, len(users) - batch_size)
            ids = users[start : start + batch_size]
            return await stubs.next().RankFeedBatch(
                pb.RankFeedBatchRequest(user_ids=ids, limit=5), timeout=30
            )

        async def search(i: int) -> object:
            return await stubs.next().SearchTop(
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
            return await stubs.next().GroupWarnings(
                pb.GroupWarningsRequest(group_id="g1", messages=messages, member_ids=members),
                timeout=5,
            )

        await closed_loop(feed, args.concurrency, 1.0)  # warm up
        await closed_loop(ping, args.concurrency, 1.0)
        rounds = []
        for _ in range(args.rounds):
            empty = await measured(cpu, closed_loop(ping, args.concurrency, args.seconds))
            rank = await measured(cpu, closed_loop(feed, args.concurrency, args.seconds))
            rounds.append({"empty": empty, "rank_feed": rank,
                           "ratio": round(rank["per_s"] / empty["per_s"], 3)})  # fmt: skip
        ratios = sorted(r["ratio"] for r in rounds)
        rank_max = max(r["rank_feed"]["per_s"] for r in rounds)
        half = await open_loop(feed, rank_max / 2, args.seconds)
        # The floor of this harness: the empty RPC at the same rate, same client, same cores.
        ping_half = await open_loop(ping, rank_max / 2, args.seconds)
        batches = await measured(
            cpu, closed_loop(batch, args.batches_in_flight, args.seconds), batch_size
        )
        search_max = await closed_loop(search, args.concurrency, args.seconds)
        searches = await open_loop(search, _pinned_rate(args, search_max), args.seconds)
        group_max = await closed_loop(group, args.concurrency, args.seconds)
        groups = await open_loop(group, _pinned_rate(args, group_max), args.seconds)
        return {
            "empty_unary_per_s": max(r["empty"]["per_s"] for r in rounds),
            "rank_feed_per_s": rank_max,
            "rank_feed_over_empty": ratios[len(ratios) // 2],  # the median round
            "rank_feed_over_empty_rounds": ratios,
            "server_cpu_us_per_call": {
                "empty": min(r["empty"]["server_cpu_us_per_call"] for r in rounds),
                "rank_feed": min(r["rank_feed"]["server_cpu_us_per_call"] for r in rounds),
            },
            "rank_feed_at_half_max": half,
            "empty_unary_at_that_rate": ping_half,
            "rank_feed_batch_users_per_s": round(batches["per_s"] * batch_size),
            "rank_feed_batch_server_cpu_us_per_user": batches["server_cpu_us_per_user"],
            "search_top_max_per_s": search_max["per_s"],
            "search_top": searches,
            "group_warnings_max_per_s": group_max["per_s"],
            "group_warnings_5_messages_20_members": groups,
        }
    finally:
        for c in channels:
            await c.close()


def rules_for_everyone(url: str) -> None:
    """An experiment whose one arm ranks by the rules alone: the model in the snapshot is read
    but not used, to compare the serving cost of the learned ranker."""
    import redis

    from feature_store import experiments

    now = time.time()
    only = experiments.Experiment.from_dict({
        "name": "bench-rules", "arms": [{"name": "rules", "share": 1.0, "policy": "rules"}],
        "start": now - 60, "end": now + 24 * 3600,
    })  # fmt: skip
    experiments.save(redis.Redis.from_url(url), only)


def wait_for_workers(metrics_port: int, workers: int, timeout: float = 300) -> None:
    """Poll each worker's /metrics until it reports an adopted snapshot (its index is built)."""
    deadline = time.monotonic() + timeout
    for i in range(workers):
        url = f"http://127.0.0.1:{metrics_port + i}/metrics"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if b"debunk_snapshot_info{" in r.read():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {i} did not load the snapshot in time")
            time.sleep(0.2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=300_000)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="server processes sharing the port (default: one per core)")  # fmt: skip
    p.add_argument("--channels", type=int, default=8, help="client connections")
    p.add_argument("--batches-in-flight", type=int, default=16, help="RankFeedBatch calls at once")
    p.add_argument("--rounds", type=int, default=3, help="alternating empty/RankFeed rounds")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--rumors", type=int, default=30_000, help="rumor library size")
    p.add_argument("--policy", choices=("model", "rules"), default="model",
                   help="rank with the snapshot's model, or by the rules alone")  # fmt: skip
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
        if args.policy == "rules":
            rules_for_everyone(server.url)
        exposed = pq.read_table(work / "state" / "current" / "exposures.parquet")
        users = exposed["user_id"].unique().to_pylist()
        users += [f"u{i:08d}" for i in range(0, args.users, 7)]  # unexposed users too
        np.random.default_rng(args.seed).shuffle(users)
        items = pq.read_table(work / "world" / "items.parquet", columns=["text"])
        texts = items["text"].to_pylist()  # rumor copies and ordinary posts, as people search
        np.random.default_rng(args.seed).shuffle(texts)
        port, metrics_port = free_port(), free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "debunk.cli", "--log-level", "WARNING", "serve",
             "--port", str(port), "--feed-daily-cap", "1000000",
             "--workers", str(args.workers), "--metrics-port", str(metrics_port)],
            env={**os.environ, "REDIS_URL": server.url},
        )  # fmt: skip
        try:
            wait_for_workers(metrics_port, args.workers)  # each builds its library index first
            # The inputs are long-lived: keep the collector from walking them during the load.
            gc.collect()
            gc.freeze()
            result = asyncio.run(
                run_load(f"127.0.0.1:{port}", users, texts, args, ServerCpu(proc.pid))
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "policy": args.policy,
        "workers": args.workers,
        "channels": args.channels,
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
