"""Durability benchmark: what persistence costs RecordEvents and RankFeed.

One embedded redis-server, one ``debunk serve`` (one worker, on the server's unix socket, as the
embedded default runs), one small served world; the owner switches the same server between
three modes in the same run, in alternating rounds:

- ``off``: no AOF, no RDB save points (what the launcher did before issue 16);
- ``everysec``: AOF fsynced once a second (an OK may precede the fsync by up to ~2 s);
- ``always``: AOF fsynced before every reply (an OK means the events are on disk).

Per mode and round: RecordEvents closed-loop at ``--concurrency`` calls in flight
(``--events`` impression events per call) and at one call in flight (the latency of a lone
caller, who cannot share an fsync with anyone), then RankFeed closed-loop (reads: they should
not care), then the nightly's bulk write: materializing ``--pairs`` exposure pairs into a new
snapshot version (every write goes through the AOF too). Each number is the median over
``--rounds`` rounds; the machine is shared and noisy.

    make bench-durability
    .venv/bin/python bench/bench_durability.py --rounds 3 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pyarrow.parquet as pq
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_store import catalog, state_table
from bench.common import command_line, emit, format_table, machine
from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from feature_store.durability import SAVE_POINTS
from feature_store.embedded import EmbeddedRedis, free_port
from feature_store.settings import RedisSettings
from offline.nightly.job import run_nightly
from offline.nightly.materialize import materialize
from offline.synth.world import synthesize

MODES = ("off", "everysec", "always")


def set_mode(server: EmbeddedRedis, mode: str) -> None:
    """Switch the running server to ``mode`` through the owner's admin commands, and wait for
    the AOF rewrite that turning the AOF on starts."""
    if mode == "off":
        server.config_set("appendonly", "no")
        server.config_set("save", "")
        return
    server.config_set("save", SAVE_POINTS)
    server.config_set("appendfsync", mode)
    server.config_set("appendonly", "yes")
    client = RedisSettings(url=server.url).sync_client()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not (info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]):
            return
        time.sleep(0.05)
    raise TimeoutError("the AOF rewrite did not finish")


async def closed_loop(
    call: Any, requests: list[Any], seconds: float, concurrency: int
) -> dict[str, float]:
    """``concurrency`` callers, each sending its next request as soon as the last answered."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop_at = time.perf_counter() + seconds

    async def caller(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                await call(requests[i % len(requests)], timeout=10)
            except grpc.aio.AioRpcError as e:
                errors[e.code().name] = errors.get(e.code().name, 0) + 1
            latencies.append(time.perf_counter() - started)
            i += concurrency

    began = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(concurrency)))
    wall = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    return {"calls_per_s": round(len(latencies) / wall, 1), "errors": errors,  # by status code
            "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3)}  # fmt: skip


def event_requests(n: int, per_call: int, tag: str) -> list[pb.RecordEventsRequest]:
    now = int(time.time())
    out = []
    for i in range(n):
        events = []
        for j in range(per_call):
            e = pb.DebunkEvent(user_id=f"b{tag}-{i}-{j}", debunk_id="d1", rumor_id="r1",
                               surface=pb.SURFACE_FEED, event=pb.EVENT_TYPE_IMPRESSION)  # fmt: skip
            e.ts.seconds = now
            events.append(e)
        out.append(pb.RecordEventsRequest(events=events))
    return out


async def measure(target: str, users: list[str], args: argparse.Namespace, tag: str) -> dict:
    async with grpc.aio.insecure_channel(target) as ch:
        stub = pb_grpc.DebunkServiceStub(ch)
        events = event_requests(20_000, args.events, tag)
        feeds = [pb.RankFeedRequest(user_id=u, limit=5) for u in users]
        return {
            "record_events": await closed_loop(
                stub.RecordEvents, events, args.seconds, args.concurrency
            ),
            "record_events_alone": await closed_loop(stub.RecordEvents, events, args.seconds, 1),
            "rank_feed": await closed_loop(stub.RankFeed, feeds, args.seconds, args.concurrency),
        }


def materialize_rate(server: EmbeddedRedis, state: Path) -> dict[str, float]:
    """Pairs per second of one whole snapshot write and flip (keeping the served version)."""
    client = RedisSettings(url=server.local_url).sync_client()
    try:
        rumors, debunks = catalog()
        summary = materialize(client, state, rumors, debunks, keep=2)
    finally:
        client.close()
    return {"pairs_per_s": round(summary.pairs / summary.seconds), "seconds": summary.seconds}


def start_service(url: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "debunk"), "serve", "--port", str(port)],
        env={**os.environ, "REDIS_URL": url}, cwd=work,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    target = f"127.0.0.1:{port}"
    with grpc.insecure_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return proc, target
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    proc.kill()
    raise TimeoutError("debunk serve did not load the snapshot")


def median_of(rounds: list[dict], mode: str, rpc: str, stat: str) -> float:
    return round(statistics.median(r[mode][rpc][stat] for r in rounds), 3)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds over the modes")
    p.add_argument("--concurrency", type=int, default=16, help="calls in flight")
    p.add_argument("--events", type=int, default=5, help="events per RecordEvents call")
    p.add_argument("--pairs", type=int, default=200_000, help="pairs per materialization")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-durability-"))  # on disk: fsyncs cost
    pq.write_table(state_table(args.pairs, seed=1), work / "pairs.parquet")
    start = date.today() - timedelta(days=args.days)
    synthesize(work / "world", users=args.users, days=args.days, seed=5, start=start)
    with EmbeddedRedis(work / "redis") as server:
        run_nightly(work / "world", start + timedelta(days=args.days - 1), work / "state",
                    RedisSettings(url=server.url), train=False)  # fmt: skip
        exposed = pq.read_table(work / "state" / "current" / "exposures.parquet")
        users = exposed["user_id"].unique().to_pylist()[:20_000]
        service, target = start_service(server.local_url, work)
        rounds: list[dict[str, Any]] = []
        try:
            for r in range(args.rounds):
                result: dict[str, Any] = {}
                for mode in MODES[r % 3 :] + MODES[: r % 3]:  # rotate the order per round
                    set_mode(server, mode)
                    result[mode] = asyncio.run(measure(target, users, args, f"{r}{mode}"))
                    result[mode]["materialize"] = materialize_rate(server, work / "pairs.parquet")
                rounds.append(result)
        finally:
            service.terminate()
            service.wait(timeout=30)
    rows = []
    for mode in MODES:
        row: list[Any] = [mode]
        for rpc in ("record_events", "record_events_alone", "rank_feed"):
            row += [median_of(rounds, mode, rpc, "calls_per_s"),
                    median_of(rounds, mode, rpc, "p50_ms"),
                    median_of(rounds, mode, rpc, "p99_ms")]  # fmt: skip
        row.append(round(statistics.median(r[mode]["materialize"]["pairs_per_s"] for r in rounds)))
        rows.append(row)
    headers = ["mode"] + [f"{rpc} {stat}" for rpc in ("RecordEvents", "RecordEvents×1",
                          "RankFeed") for stat in ("calls/s", "p50 ms", "p99 ms")]  # fmt: skip
    headers.append("materialize pairs/s")
    print(format_table(headers, rows))
    failed = {m: [r[m][rpc]["errors"] for r in rounds for rpc in ("record_events", "rank_feed")
                  if r[m][rpc]["errors"]] for m in MODES}  # fmt: skip
    print("failed calls by mode:", failed)
    emit({"bench": "durability", "command": command_line(), "machine": machine(),
          "args": vars(args), "rounds": rounds})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
