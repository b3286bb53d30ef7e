"""A sampled profile of one serving worker under RankFeedBatch (or RankFeed) load: a world
built by ``bench_serve.py --reuse DIR``, one ``debunk serve`` worker on its Redis, every
user of the mix warmed once, then py-spy (``pip install py-spy`` into the venv; not a
dependency) samples the worker, native frames included, idle ones not, while a closed loop
runs. Prints the hottest functions (self and total) from py-spy's raw stacks.

    .venv/bin/python bench/serve_batch_profile.py --reuse /tmp/serve-world --mix exposed
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_serve import user_mixes
from bench.serve_load import Method, closed_loop
from bench.serve_process import ServerCpu, free_port_run, set_policy, wait_for_workers
from debunk.v1 import debunk_pb2 as pb
from feature_store.embedded import EmbeddedRedis, free_port

BATCH_USERS = 1000
# Frames of a thread that is waiting, not running.
WAITS = ("epoll_wait", "poll (libc", "PyThread_acquire_lock_timed", "SimpleQueue_get", "sem_wait")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--reuse", required=True, help="a bench_serve.py --reuse DIR, already built")
    p.add_argument("--mix", choices=("exposed", "mix"), default="exposed")
    p.add_argument("--rpc", choices=("batch", "feed"), default="batch")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--in-flight", type=int, default=16)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--unexposed-share", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--code", default="", help="serve from this checkout instead")
    p.add_argument("--no-profile", action="store_true", help="only the rate and CPU")
    p.add_argument(
        "--no-native",
        action="store_true",
        help="Python frames only: native unwinding stalls a worker under RankFeed's "
        "many small calls (the C and grpc core time goes to the calling frame)",
    )
    p.add_argument("--rate", type=int, default=250, help="py-spy samples a second")
    args = p.parse_args()
    work = Path(args.reuse)
    with EmbeddedRedis(work / "redis") as server:
        set_policy(server.url, "model")
        exposed = pq.read_table(work / "state" / "current" / "exposures.parquet")
        users = user_mixes(exposed["user_id"].unique().to_pylist(), args)[args.mix]
        metrics = free_port_run(1)
        port = free_port()
        env = {**os.environ, "REDIS_URL": server.local_url}
        if args.code:
            env["PYTHONPATH"] = str(Path(args.code).resolve())
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "--log-level", "WARNING", "serve", "--port",
             str(port), "--feed-daily-cap", "1000000", "--workers", "1", "--metrics-port",
             str(metrics)], env=env, cwd=Path(args.code).resolve() if args.code else None,
        )  # fmt: skip
        try:
            wait_for_workers(metrics, 1)
            worker = _worker_pid(proc.pid)
            print(asyncio.run(_load(f"127.0.0.1:{port}", users, args, worker)))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    return 0


def _worker_pid(pid: int) -> int:
    """The serving worker (the supervisor's child, or the process itself)."""
    kids = [int(k) for t in Path(f"/proc/{pid}/task").glob("*/children")
            for k in t.read_text().split()]  # fmt: skip
    return kids[0] if kids else pid


async def _load(target: str, users: list[str], args: argparse.Namespace, worker: int) -> dict:
    channels = [grpc.aio.insecure_channel(target) for _ in range(args.channels)]
    service = "/debunk.v1.DebunkService/"
    if args.rpc == "batch":
        rpc = Method(channels, service + "RankFeedBatch", pb.RankFeedBatchResponse, True)
        reqs = [rpc.prepare(pb.RankFeedBatchRequest(user_ids=users[s : s + BATCH_USERS], limit=5))
                for s in range(0, len(users), BATCH_USERS)]  # fmt: skip
        per_call = BATCH_USERS
    else:
        rpc = Method(channels, service + "RankFeed", pb.RankFeedResponse, True)
        reqs = [rpc.prepare(pb.RankFeedRequest(user_id=u, limit=5)) for u in users]
        per_call = 1
    warm = Method(channels, service + "RankFeedBatch", pb.RankFeedBatchResponse, True)
    for s in range(0, len(users), BATCH_USERS):  # every user's rows kept before the samples
        await warm(warm.prepare(pb.RankFeedBatchRequest(user_ids=users[s : s + BATCH_USERS],
                                                        limit=5)), timeout=60)  # fmt: skip

    degraded = 0

    async def call(i: int) -> object:
        nonlocal degraded
        got = await rpc(reqs[i % len(reqs)], timeout=30)
        degraded += rpc.parse(got).degraded  # a degraded answer skipped the ranking
        return got

    await closed_loop(call, args.in_flight if args.rpc == "batch" else 64, 2.0)  # settle
    degraded = 0
    cpu = ServerCpu(worker)
    spy = None
    raw = Path(tempfile.mkdtemp(prefix="spy-")) / "stacks.txt"
    if not args.no_profile:
        spy = subprocess.Popen(
            [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(worker),
             *([] if args.no_native else ["--native"]), "--rate", str(args.rate), "--duration",
             str(int(args.seconds)), "--format", "raw", "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.5)
    before = cpu.seconds()
    got = await closed_loop(call, args.in_flight if args.rpc == "batch" else 64, args.seconds)
    spent = cpu.seconds() - before
    for c in channels:
        await c.close()
    out = {
        **got,
        "server_cpu_us_per_user": round(spent / max(1, got["calls"] * per_call) * 1e6, 1),
        "users_per_s": round(got["calls"] * per_call / got["seconds"]),
        "degraded": degraded,
    }
    if spy is not None:
        spy.wait()
        _report(raw, args.top)
    return out


def _report(raw: Path, top: int) -> None:
    """Self and total sample shares per function from py-spy's raw (collapsed) stacks, leaving
    out a thread's samples while it waits (epoll, poll, a lock or queue)."""
    selfs: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter()
    n = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        k = int(count)
        frames = stack.split(";")
        if any(w in f for f in frames[-4:] for w in WAITS):
            continue
        n += k
        selfs[frames[-1]] += k
        for f in set(frames):
            totals[f] += k
    print(f"{n} samples")
    for name, counter in (("self", selfs), ("total", totals)):
        print(f"--- {name}")
        for f, k in counter.most_common(top):
            print(f"{100 * k / n:6.1f}%  {f[:150]}")


if __name__ == "__main__":
    sys.exit(main())
