"""Feature-store benchmark: materialization pairs/s and Redis bytes per pair, and single-user
feed-read latency (the service's one-round-trip feed view: exposures, delivery, today's cap,
model side) through each transport, against a PING floor in the same run.

    make bench-store                       # 2M pairs
    .venv/bin/python bench/bench_store.py --pairs 500000 --reads 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.records import Debunk, Rumor
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis
from feature_store.reader import SnapshotReader
from feature_store.transport.base import StoreTransport
from feature_store.transport.factory import open_transport
from feature_store.transport.redis_py import RedisPyTransport
from offline.join.contracts import STATE_SCHEMA
from offline.nightly.materialize import materialize

TS = pa.timestamp("us", tz="UTC")


def state_table(pairs: int, seed: int) -> pa.Table:
    """Deduplicated (user, rumor) pairs with every state column, sorted by user."""
    rng = np.random.default_rng(seed)
    n_users = int(pairs / 2.7)
    users = np.sort(rng.integers(0, n_users, size=pairs))
    rumors = rng.integers(0, 5000, size=pairs)
    key = users.astype(np.int64) * 10_000 + rumors
    _, keep = np.unique(key, return_index=True)
    users, rumors = users[keep], rumors[keep]
    n = len(users)
    first = 1_790_812_800_000_000 + rng.integers(0, 30 * 86400, size=n) * 1_000_000
    return pa.table(
        {
            "user_id": pa.array(np.char.mod("u%08d", users)),
            "rumor_id": pa.array(np.char.mod("r%06d", rumors)),
            "exposures": pa.array(rng.integers(1, 20, size=n)),
            "first_ts": pa.array(first, TS),
            "last_ts": pa.array(first + 3_600_000_000, TS),
            "strongest_action": pa.array(np.array(["impression", "click", "share"])[rumors % 3]),
            "surface_mask": pa.array((rumors % 63 + 1).astype(np.int16)),
            "shared": pa.array(rumors % 3 == 2),
            "first_share_ts": pa.nulls(n, TS),
            "last_share_ts": pa.nulls(n, TS),
            "tag_score": pa.array(np.ones(n, dtype=np.float32)),
        },
        schema=STATE_SCHEMA,
    )


def catalog() -> tuple[list[Rumor], list[Debunk]]:
    rumors = [
        Rumor(f"r{i:06d}", f"claim {i}", "other", 3, "false", "confirmed") for i in range(5000)
    ]
    debunks = [
        Debunk(f"d{i:07d}", (f"r{i:06d}",), f"title {i}", f"https://x/{i}", "pub", "official")
        for i in range(5000)
    ]
    return rumors, debunks


def percentiles(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
    }


async def feed_latency(
    transport: StoreTransport, version: str, users: list[str], reads: int
) -> dict[str, float]:
    """Sequential single-user feed reads through ``transport`` (the catalog loaded first)."""
    reader = SnapshotReader(transport)
    await reader.catalog(version)
    samples, now = [], time.time()
    try:
        for i in range(reads):
            t = time.perf_counter()
            await reader.feed_view(version, users[i % len(users)], surface="feed", now=now,
                                   timeout=1.0)  # fmt: skip
            samples.append(time.perf_counter() - t)
    finally:
        await transport.aclose()
    return percentiles(samples)


async def ping_latency(url: str, reads: int) -> dict[str, float]:
    """Sequential PINGs through redis-py's asyncio client: the floor of an awaited round trip."""
    client = RedisSettings(url=url).async_client()
    samples = []
    try:
        for _ in range(reads):
            t = time.perf_counter()
            await client.ping()
            samples.append(time.perf_counter() - t)
    finally:
        await client.aclose()
    return percentiles(samples)


def read_latency(server: EmbeddedRedis, version: str, users: list[str], reads: int) -> dict:
    """Feed reads through the transport the service picks (RESP lanes) over TCP and the unix
    socket, through redis-py (the Cluster transport) over TCP, and the PING floor."""
    out = {
        "feed_view_resp_tcp": open_transport(RedisSettings(url=server.url)),
        "feed_view_resp_unix": open_transport(RedisSettings(url=server.local_url)),
        "feed_view_redis_py_tcp": RedisPyTransport(RedisSettings(url=server.url).async_client()),
    }
    result = {k: asyncio.run(feed_latency(t, version, users, reads)) for k, t in out.items()}
    result["ping_redis_py"] = asyncio.run(ping_latency(server.url, reads))
    return result


def redis_benchmark_ping(port: int, reads: int) -> dict[str, float] | None:
    """redis-benchmark's PING latency with one client, when the binary is on PATH."""
    binary = shutil.which("redis-benchmark")
    if not binary:
        return None
    out = (
        subprocess.run(
            [binary, "-p", str(port), "-c", "1", "-n", str(reads), "-t", "ping", "--csv"],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()
    )
    header = [h.strip('"') for h in out[0].split(",")]
    row = [v.strip('"') for v in out[1].split(",")]
    values = dict(zip(header, row, strict=False))
    return {"p50_ms": float(values["p50_latency_ms"]), "p99_ms": float(values["p99_latency_ms"])}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pairs", type=int, default=2_000_000)
    p.add_argument("--reads", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    state = state_table(args.pairs, args.seed)
    pq.write_table(state, work / "state.parquet")
    rumors, debunks = catalog()
    with EmbeddedRedis(work / "redis") as server:
        client = RedisSettings(url=server.url).sync_client()
        summary = materialize(client, work / "state.parquet", rumors, debunks)
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
        users = state["user_id"].unique().to_pylist()
        rng = np.random.default_rng(args.seed)
        sample = [users[i] for i in rng.integers(0, len(users), size=min(args.reads, 50_000))]
        reads = read_latency(server, summary.version, sample, args.reads)
        floor = redis_benchmark_ping(port, args.reads)
        client.close()
    shutil.rmtree(work, ignore_errors=True)
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "pairs": summary.pairs,
        "users": summary.users,
        "write_seconds": summary.seconds,
        "pairs_per_s": round(summary.pairs / summary.seconds),
        "redis_bytes_per_pair": round(summary.redis_bytes / summary.pairs, 1),
        "reads": reads,
        "redis_benchmark_ping": floor or "redis-benchmark not on PATH",
    }
    floor_p50 = (floor or reads["ping_redis_py"])["p50_ms"]
    result["feed_view_p50_over_ping_p50"] = round(
        reads["feed_view_resp_tcp"]["p50_ms"] / floor_p50, 2
    )
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_store.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
