"""Serving benchmark: RankFeed throughput against an empty unary RPC (the standard health Check,
served by the same server) in the same run, RankFeed latency at half of its maximum throughput,
RankFeedBatch users/s, and SearchTop / GroupWarnings (5 messages, 20 members) maximum
throughput and latency at a fixed moderate rate (``--pinned-rate``, 200/s), beside the empty RPC
at that same rate. The rumor library is the synthetic world's (``--rumors``, 30,000 Chinese
claims by default); the index the service builds over it is timed and sized first, in a child
process of its own. Load generator and server share this machine.

The server runs ``--workers`` processes on one port (default: one per core, as deployed); the
load generator spreads its calls over ``--channels`` connections, so every worker gets some
(the kernel balances connections, not calls), with ``--batches-in-flight`` RankFeedBatch calls
at once.
The RankFeed/empty ratio is the median of ``--rounds`` alternating rounds of the two (the machine
is shared and noisy; a round's two rates are measured seconds apart), and the server's own CPU
time per call (all workers, from /proc) is reported beside each rate. RankFeedBatch's maximum
is the best of ``--batch-rounds`` rounds (outside load only ever slows a round down); every
round is reported. Each latency is measured in ``--latency-rounds`` rounds and the round with
the median p99 is reported, with every round's p99 beside it.

    make bench-serve
    .venv/bin/python bench/bench_serve.py --users 300000 --rumors 30000 --seconds 5 --workers 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pyarrow.parquet as pq
from grpc_health.v1 import health_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.index_build import index_build
from debunk.v1 import debunk_pb2 as pb
from domain.experiments import Experiment
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis, free_port
from offline.nightly.job import run_nightly
from offline.synth.world import synthesize


def percentiles(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3)}  # fmt: skip


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The load generator's own garbage-collection pauses are not the server's latency: the
    collector is off while a measurement runs (as timeit does)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def closed_loop(
    call: Callable[[int], Awaitable[object]], concurrency: int, seconds: float
) -> dict[str, float]:
    """As many calls as ``concurrency`` workers can make in ``seconds``: the maximum rate."""
    with collector_paused():
        return await _closed_loop(call, concurrency, seconds)


async def _closed_loop(
    call: Callable[[int], Awaitable[object]], concurrency: int, seconds: float
) -> dict[str, float]:
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
    with collector_paused():
        return await _open_loop(call, rate, seconds)


async def _open_loop(
    call: Callable[[int], Awaitable[object]], rate: float, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    failed = 0
    tasks: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    n = int(rate * seconds)

    async def one(i: int, due: float) -> None:
        nonlocal failed
        try:
            await call(i)
        except grpc.aio.AioRpcError:  # e.g. past its deadline at a rate above the maximum
            failed += 1
        latencies.append(time.perf_counter() - due)  # a failure counts at the time it took

    for i in range(n):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    # Only the calls still in flight: gathering every task of the run at the end would stall
    # the loop for milliseconds and charge that to the last calls' latency.
    await asyncio.gather(*tasks)
    return {"rate": round(rate), "calls": n, "failed": failed, **percentiles(latencies)}


async def open_loop_rounds(
    call: Callable[[int], Awaitable[object]], rate: float, seconds: float, rounds: int
) -> dict[str, Any]:
    """``open_loop`` ``rounds`` times: the round with the median p99, and every round's p99 (a
    stall of the shared machine lands in one round, not in the figure)."""
    runs = [await open_loop(call, rate, seconds) for _ in range(max(1, rounds))]
    runs.sort(key=lambda r: r["p99_ms"])
    return {**runs[len(runs) // 2], "p99_ms_rounds": [r["p99_ms"] for r in runs]}


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

    def rss_mb(self) -> list[float]:
        """The resident set of each worker process (the supervisor's own first), in MB."""
        out = []
        for pid in self._pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            kb = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS"))
            out.append(round(kb / 1024, 1))
        return out

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


class Method:
    """One RPC over several channels (each its own connection); each call takes the channel
    with the fewest calls in flight, as a least-request balancer would, so a worker that got
    more connections than another from the kernel does not hold the whole load back.

    With ``--client raw`` (the default) requests are serialized before the load starts and
    replies are kept as bytes, as a native load generator would: the harness then spends the
    same few microseconds on every RPC, so the ratio compares what the server does. With
    ``--client proto`` each call builds its request and parses its reply in Python.
    """

    def __init__(self, channels: list[grpc.aio.Channel], path: str, reply: Any, raw: bool):
        self.raw = raw
        self.reply = reply
        self.calls = [
            c.unary_unary(path) if raw
            else c.unary_unary(path, request_serializer=_serialize,
                               response_deserializer=reply.FromString)
            for c in channels
        ]  # fmt: skip
        self.in_flight = [0] * len(channels)

    def prepare(self, request: Any) -> Any:
        """What a call sends: the serialized request (raw) or the message itself (proto)."""
        return request.SerializeToString() if self.raw else request

    async def __call__(self, request: Any, timeout: float) -> Any:
        busy = self.in_flight
        i = busy.index(min(busy))
        busy[i] += 1
        try:
            return await self.calls[i](request, timeout=timeout)
        finally:
            busy[i] -= 1

    def parse(self, reply: Any) -> Any:
        return self.reply.FromString(reply) if self.raw else reply


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()


def group_request(texts: list[str], users: list[str], i: int) -> pb.GroupWarningsRequest:
    """A group of 20 members whose last 5 messages are posts (rumor copies among them)."""
    messages = [
        pb.GroupMessage(message_id=f"m{j}", text=texts[(i * 5 + j) % len(texts)][:500])
        for j in range(5)
    ]
    members = [users[(i * 20 + j) % len(users)] for j in range(20)]
    return pb.GroupWarningsRequest(group_id="g1", messages=messages, member_ids=members)


async def check_replies(
    feed: Method, feeds: list[Any], batch: Method, batches: list[Any]
) -> dict[str, int]:
    """Parse a sample of real answers before the load: they must carry cards and not be
    degraded, or the rates below would measure an error path."""
    with_cards = 0
    for request in feeds[:200]:
        reply = feed.parse(await feed(request, timeout=5))
        if reply.degraded:
            raise RuntimeError("RankFeed answered degraded before the load started")
        with_cards += bool(reply.cards)
    reply = batch.parse(await batch(batches[0], timeout=30))
    if reply.degraded or not any(f.cards for f in reply.feeds):
        raise RuntimeError("RankFeedBatch answered without cards before the load started")
    if not with_cards:
        raise RuntimeError("no RankFeed answer carried a card")
    return {"rank_feed_sampled": 200, "rank_feed_with_cards": with_cards}


async def run_load(
    target: str, users: list[str], texts: list[str], args: argparse.Namespace, cpu: ServerCpu
) -> dict[str, object]:
    options = [("grpc.use_local_subchannel_pool", 1)]  # one connection per channel
    channels = [
        grpc.aio.insecure_channel(target, options=[*options, ("bench.channel", i)])
        for i in range(args.channels)
    ]
    raw = args.client == "raw"
    service = "/debunk.v1.DebunkService/"
    try:
        check_rpc = Method(
            channels, "/grpc.health.v1.Health/Check", health_pb2.HealthCheckResponse, raw
        )
        feed_rpc = Method(channels, service + "RankFeed", pb.RankFeedResponse, raw)
        batch_rpc = Method(channels, service + "RankFeedBatch", pb.RankFeedBatchResponse, raw)
        search_rpc = Method(channels, service + "SearchTop", pb.SearchTopResponse, raw)
        group_rpc = Method(channels, service + "GroupWarnings", pb.GroupWarningsResponse, raw)
        ping_req = check_rpc.prepare(health_pb2.HealthCheckRequest(service=""))
        batch_size = 1000
        feed_reqs = [feed_rpc.prepare(pb.RankFeedRequest(user_id=u, limit=5)) for u in users]
        batch_reqs = [
            batch_rpc.prepare(pb.RankFeedBatchRequest(user_ids=users[s : s + batch_size], limit=5))
            for s in range(0, max(1, len(users) - batch_size), batch_size)
        ]
        n_texts = min(len(texts), 20_000)
        search_reqs = [
            search_rpc.prepare(
                pb.SearchTopRequest(query=texts[i][:200], user_id=users[i % len(users)])
            )
            for i in range(n_texts)
        ]
        group_reqs = [group_rpc.prepare(group_request(texts, users, i)) for i in range(n_texts)]

        async def ping(i: int) -> object:
            return await check_rpc(ping_req, timeout=5)

        async def feed(i: int) -> object:
            return await feed_rpc(feed_reqs[i % len(feed_reqs)], timeout=5)

        async def batch(i: int) -> object:
            return await batch_rpc(batch_reqs[i % len(batch_reqs)], timeout=30)

        async def search(i: int) -> object:
            return await search_rpc(search_reqs[i % len(search_reqs)], timeout=5)

        async def group(i: int) -> object:
            return await group_rpc(group_reqs[i % len(group_reqs)], timeout=5)

        checked = await check_replies(feed_rpc, feed_reqs, batch_rpc, batch_reqs)
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
        rounds_n = args.latency_rounds
        half = await open_loop_rounds(feed, rank_max / 2, args.seconds, rounds_n)
        # The floor of this harness: the empty RPC at the same rate, same client, same cores.
        ping_half = await open_loop_rounds(ping, rank_max / 2, args.seconds, rounds_n)
        batch_rounds = [
            await measured(
                cpu, closed_loop(batch, args.batches_in_flight, args.seconds), batch_size
            )
            for _ in range(args.batch_rounds)
        ]
        batches = max(batch_rounds, key=lambda r: r["per_s"])
        search_max = await closed_loop(search, args.concurrency, args.seconds)
        searches = await open_loop_rounds(
            search, _pinned_rate(args, search_max), args.seconds, rounds_n
        )
        group_max = await closed_loop(group, args.concurrency, args.seconds)
        groups = await open_loop_rounds(
            group, _pinned_rate(args, group_max), args.seconds, rounds_n
        )
        # The harness floor at the pinned surfaces' rate (when it is one fixed rate).
        ping_pinned = (
            await open_loop_rounds(ping, args.pinned_rate, args.seconds, rounds_n)
            if args.pinned_rate > 0
            else None
        )
        return {
            "client": args.client,
            "replies_checked": checked,
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
            "rank_feed_batch_users_per_s": round(batches["per_s"] * batch_size),  # best round
            "rank_feed_batch_rounds_users_per_s": [r["per_s"] * batch_size for r in batch_rounds],
            "rank_feed_batch_server_cpu_us_per_user": batches["server_cpu_us_per_user"],
            "search_top_max_per_s": search_max["per_s"],
            "search_top": searches,
            "group_warnings_max_per_s": group_max["per_s"],
            "group_warnings_5_messages_20_members": groups,
            "empty_unary_at_pinned_rate": ping_pinned,
            "server_rss_mb": cpu.rss_mb(),
        }
    finally:
        for c in channels:
            await c.close()


def set_policy(url: str, policy: str) -> None:
    """For ``rules``: an experiment whose one arm ranks by the rules alone (the model in the
    snapshot is read but not used), to compare the serving cost of the learned ranker. For
    ``model``: no experiment (a reused world may hold the rules one)."""
    import redis

    from feature_store import experiments

    client = redis.Redis.from_url(url)
    experiments.delete(client, "bench-rules")
    if policy == "rules":
        now = time.time()
        only = Experiment.from_dict({
            "name": "bench-rules", "arms": [{"name": "rules", "share": 1.0, "policy": "rules"}],
            "start": now - 60, "end": now + 24 * 3600,
        })  # fmt: skip
        experiments.save(client, only)


def free_port_run(n: int) -> int:
    """The first of ``n`` consecutive loopback ports that were all free a moment ago (worker i
    serves its metrics on the first + i)."""
    for _ in range(100):
        first = free_port()
        if first + n <= 65536 and all(_free(first + i) for i in range(1, n)):
            return first
    raise RuntimeError(f"no {n} consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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
    p.add_argument("--rounds", type=int, default=5, help="alternating empty/RankFeed rounds")
    p.add_argument("--batch-rounds", type=int, default=3,
                   help="RankFeedBatch rounds (the best is its maximum rate)")  # fmt: skip
    p.add_argument("--latency-rounds", type=int, default=3,
                   help="rounds of each latency measurement (median p99 reported)")  # fmt: skip
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--rumors", type=int, default=30_000, help="rumor library size")
    p.add_argument("--reuse", metavar="DIR", default="",
                   help="build world and snapshot in DIR once; reuse them later")  # fmt: skip
    p.add_argument("--client", choices=("raw", "proto"), default="raw",
                   help="raw: requests serialized up front, replies kept as bytes (default); "
                   "proto: build and parse each message in Python")  # fmt: skip
    p.add_argument("--policy", choices=("model", "rules"), default="model",
                   help="rank with the snapshot's model, or by the rules alone")  # fmt: skip
    p.add_argument(
        "--pinned-rate",
        type=float,
        default=200.0,
        help="SearchTop / GroupWarnings calls per second (open loop), the empty RPC measured at "
        "the same rate beside them (default: a fixed moderate 200/s); 0: half of each one's max",
    )
    args = p.parse_args()
    work = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="bench-serve-"))
    start = date.today() - timedelta(days=args.days)
    built = work / "built.json"  # written once the world and its snapshot are in place
    if not built.exists():
        synthesize(work / "world", users=args.users, days=args.days, seed=args.seed,
                   start=start, rumors=args.rumors)  # fmt: skip
    with EmbeddedRedis(work / "redis") as server:
        if not built.exists():
            night = run_nightly(work / "world", start + timedelta(days=args.days - 1),
                                work / "state", RedisSettings(url=server.url))  # fmt: skip
            built.write_text(json.dumps({"pairs": night["state"]["pairs"]}))
        pairs = json.loads(built.read_text())["pairs"]
        set_policy(server.url, args.policy)
        index = index_build(server.url)  # before the server starts: the machine is idle
        exposed = pq.read_table(work / "state" / "current" / "exposures.parquet")
        users = exposed["user_id"].unique().to_pylist()
        users += [f"u{i:08d}" for i in range(0, args.users, 7)]  # unexposed users too
        np.random.default_rng(args.seed).shuffle(users)
        items = pq.read_table(work / "world" / "items.parquet", columns=["text"])
        texts = items["text"].to_pylist()  # rumor copies and ordinary posts, as people search
        np.random.default_rng(args.seed).shuffle(texts)
        port, metrics_port = free_port(), free_port_run(args.workers)
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "--log-level", "WARNING", "serve",
             "--port", str(port), "--feed-daily-cap", "1000000",
             "--workers", str(args.workers), "--metrics-port", str(metrics_port)],
            env={**os.environ, "REDIS_URL": server.local_url},
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
        "users_in_snapshot": pairs,
        "exposed_users": len(exposed["user_id"].unique()),
        "library_index": index,
        **result,
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_serve.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
