"""Live exposure ingest benchmark (issue #19): the ingest rate of RecordExposures and of a
`debunk ingest` process on the stream, each beside a serving process under RankFeed load; the
time from an exposure's acknowledgement to the first RankFeed that carries its card (p50/p99);
and RankFeed's server CPU with the live state read and without, in the same run: for live
rows on rumors the user has (same cards), on new rumors against the same states folded into the
snapshot (``folded_twins``: same cards, the cost of the live state alone) and against the
snapshot without them (more cards ranked), and for users without live rows (empty keys).

    make bench-live                                     # runs bench_live.py, then this
    .venv/bin/python bench/bench_ingest.py --exposures 400000

One embedded Redis (durable, as deployed). The snapshot is written here: 50 rumors, 20,000
tagged items, 20,000 users with 1-3 exposure states, ``run_date`` yesterday (so today is the
live day). Exposures are seeded; 10% are on tagged items. The server runs in this process on
its own loop thread (`bench_live.served`); RecordExposures requests are serialized before the
clock starts, so the client side costs little. Results: bench/out/bench_ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_live import served  # noqa: E402
from bench.common import command_line, format_table, machine  # noqa: E402

OUT = ROOT / "bench" / "out" / "ingest"
REPORT = ROOT / "bench" / "out" / "bench_ingest.json"
STREAM = "dbk:{ingest}:bench-exposures"
RUMORS, ITEMS, USERS = 50, 20_000, 20_000


def write_snapshot(client: Any, seed: int) -> dict[str, int]:
    """A snapshot covering through yesterday: catalog, tagged items, exposure states; returns
    each user's first rumor (its index)."""
    import pyarrow as pa

    from domain.records import Debunk, Rumor
    from feature_store.snapshots import SnapshotWriter
    from offline.join.contracts import STATE_SCHEMA

    rng = np.random.default_rng(seed)
    rumors = [Rumor(f"r{i:03d}", f"claim {i}", "other", 3, "false", "confirmed")
              for i in range(RUMORS)]  # fmt: skip
    debunks = [Debunk(f"d{i:03d}", (f"r{i:03d}",), f"debunk {i}", f"https://x/d{i}", "p",
                      "official") for i in range(RUMORS)]  # fmt: skip
    w = SnapshotWriter(client, "bench-ingest")
    w.write_catalog(rumors, debunks)
    w.write_items({f"t{i:06d}": [f"r{i % RUMORS:03d}"] for i in range(ITEMS)})
    per = rng.integers(1, 4, USERS)
    users = np.repeat(np.arange(USERS), per)
    n = len(users)
    ts = datetime.now(UTC) - timedelta(days=2)
    w.write_exposures([pa.RecordBatch.from_pydict({
        "user_id": [f"s{u:06d}" for u in users],
        "rumor_id": [f"r{(u * 7 + k) % RUMORS:03d}" for k, u in enumerate(users)],
        "exposures": rng.integers(1, 5, n), "first_ts": [ts] * n, "last_ts": [ts] * n,
        "strongest_action": ["click"] * n, "surface_mask": [1] * n, "shared": [False] * n,
        "first_share_ts": [None] * n, "last_share_ts": [None] * n, "tag_score": [1.0] * n,
    }, schema=STATE_SCHEMA)])  # fmt: skip
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    w.commit({"run_date": yesterday})
    first: dict[str, int] = {}
    for k, u in enumerate(users.tolist()):
        first.setdefault(f"s{u:06d}", (u * 7 + k) % RUMORS)
    return first


def exposure_rows(n: int, seed: int, users: int = 200_000) -> list[tuple[str, str, int, int]]:
    """n seeded exposures (user, item, surface enum, action enum); 10% on tagged items."""
    rng = np.random.default_rng(seed)
    u = rng.integers(0, users, n)
    tagged = rng.random(n) < 0.10
    item = rng.integers(0, ITEMS, n)
    return [(f"s{u[k]:06d}", f"t{item[k]:06d}" if tagged[k] else f"x{item[k]:07d}",
             1 + k % 3, 1 + k % 5) for k in range(n)]  # fmt: skip


def requests(rows: list[tuple[str, str, int, int]], per: int) -> list[bytes]:
    """RecordExposures requests of ``per`` rows, serialized."""
    from debunk.v1 import debunk_pb2 as pb

    now = int(time.time()) - 60
    out = []
    for lo in range(0, len(rows), per):
        req = pb.RecordExposuresRequest()
        for u, i, s, a in rows[lo : lo + per]:
            e = req.events.add(user_id=u, item_id=i, surface=s, action=a)
            e.ts.seconds = now
        out.append(req.SerializeToString())
    return out


class FeedLoad:
    """RankFeed calls in a loop on a thread (the serving load beside ingest)."""

    def __init__(self, stub: Any, users: list[str]) -> None:
        self.stub, self.users, self.calls = stub, users, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from debunk.v1 import debunk_pb2 as pb

        while not self._stop.is_set():
            u = self.users[self.calls % len(self.users)]
            self.stub.RankFeed(pb.RankFeedRequest(user_id=u, limit=5), timeout=5)
            self.calls += 1

    def __enter__(self) -> FeedLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def rpc_rate(channel: Any, payloads: list[bytes], in_flight: int) -> dict[str, Any]:
    """RecordExposures exposures/s with ``in_flight`` calls outstanding."""
    call = channel.unary_unary("/debunk.v1.DebunkService/RecordExposures",
                               request_serializer=None, response_deserializer=None)  # fmt: skip
    t0 = time.perf_counter()
    futures: list[Any] = []
    for p in payloads:
        futures.append(call.future(p, timeout=60))
        if len(futures) >= in_flight:
            futures.pop(0).result()
    for f in futures:
        f.result()
    return {"seconds": round(time.perf_counter() - t0, 3)}


def stream_rate(
    client: Any, redis_url: str, rows: list[tuple[str, str, int, int]], per_entry: int
) -> dict:
    """Append ``rows`` to the stream (untimed; ``per_entry`` rows per entry, packed as
    tab-separated lines when above 1), then time a `debunk ingest` process to drain it."""
    from domain.vocab import ACTIONS, SURFACES

    now = str(int(time.time()) - 60)
    pipe = client.pipeline(transaction=False)
    for k in range(0, len(rows), per_entry):
        chunk = rows[k : k + per_entry]
        if per_entry == 1:
            u, i, s, a = chunk[0]
            pipe.xadd(STREAM, {"user_id": u, "item_id": i, "ts": now,
                               "surface": SURFACES[s - 1], "action": ACTIONS[a - 1]})  # fmt: skip
        else:
            lines = "\n".join(f"{u}\t{i}\t{now}\t{SURFACES[s - 1]}\t{ACTIONS[a - 1]}"
                              for u, i, s, a in chunk)  # fmt: skip
            pipe.xadd(STREAM, {"rows": lines})
        if (k // per_entry) % 5_000 == 4_999:
            pipe.execute()
    pipe.execute()
    cmd = [sys.executable, "-m", "cli.main", "ingest", "--stream", STREAM, "--group", "bench",
           "--batch", "5000", "--block-ms", "200", "--exit-when-idle"]  # fmt: skip
    t0, cpu0, redis0 = time.perf_counter(), _children_cpu(), _redis_cpu(client)
    done = subprocess.run(cmd, env={**os.environ, "REDIS_URL": redis_url}, cwd=ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    wall = time.perf_counter() - t0
    cpu, redis_cpu = _children_cpu() - cpu0, _redis_cpu(client) - redis0
    summary = json.loads(done.stdout)
    return {"wall_s": round(wall, 3), "consumer_s": summary["seconds"], "per_entry": per_entry,
            "rows": summary["rows"], "stored": summary["stored"],
            "exposures_per_s_consumer": round(summary["rows"] / summary["seconds"]),
            "exposures_per_s_wall": round(summary["rows"] / wall),
            "process_cpu_us_per_row": round(cpu / summary["rows"] * 1e6, 2),
            "redis_cpu_us_per_row": round(redis_cpu / summary["rows"] * 1e6, 2)}  # fmt: skip


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _redis_cpu(client: Any) -> float:
    """redis-server's CPU seconds so far (INFO cpu; its RankFeed reads beside are in it)."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def eligible_latency(stub: Any, n: int) -> dict[str, Any]:
    """From RecordExposures' answer to the first RankFeed carrying the card, for n new users."""
    from debunk.v1 import debunk_pb2 as pb

    lat, calls = [], 0
    for k in range(n):
        user, item = f"fresh{k:05d}", f"t{k:06d}"
        req = pb.RecordExposuresRequest()
        req.events.add(user_id=user, item_id=item, surface=1, action=2).ts.seconds = int(
            time.time()
        )
        stub.RecordExposures(req, timeout=5)
        t0 = time.perf_counter()
        while True:
            calls += 1
            reply = stub.RankFeed(pb.RankFeedRequest(user_id=user, limit=5), timeout=5)
            if reply.cards:
                break
            if time.perf_counter() - t0 > 5:
                break
        lat.append(time.perf_counter() - t0)
    ms = np.array(lat) * 1e3
    return {
        "users": n,
        "rankfeed_calls": calls,
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def stream_latency(client: Any, stub: Any, redis_url: str, n: int) -> dict[str, Any]:
    """From XADD (before the consumer's acknowledgement) to the first RankFeed with the card,
    a `debunk ingest` process consuming with blocking reads."""
    from debunk.v1 import debunk_pb2 as pb

    cmd = [sys.executable, "-m", "cli.main", "ingest", "--stream", STREAM, "--group", "bench",
           "--batch", "500", "--block-ms", "1000"]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, "REDIS_URL": redis_url}, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    lat = []
    try:
        time.sleep(2.0)  # let it start and block on the stream (the first reads are not timed)
        for k in range(n):
            user, item = f"sfresh{k:05d}", f"t{k:06d}"
            t0 = time.perf_counter()
            client.xadd(STREAM, {"user_id": user, "item_id": item, "ts": str(int(time.time())),
                                 "surface": "feed", "action": "click"})  # fmt: skip
            while time.perf_counter() - t0 < 5:
                if stub.RankFeed(pb.RankFeedRequest(user_id=user, limit=5), timeout=5).cards:
                    break
            lat.append(time.perf_counter() - t0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    ms = np.array(lat) * 1e3
    return {
        "users": n,
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def feed_cost(
    server: Any,
    stub: Any,
    clock: int,
    users: list[str],
    rounds: int,
    baseline: list[str] | None = None,
) -> dict:
    """Server CPU per RankFeed with the live state read and without, call by call in
    alternating order (so the shared machine's load falls on both sides alike). Given
    ``baseline`` (one user per user of ``users``), "without" calls those users instead: the
    same exposures served from the snapshot, so both sides rank the same cards."""
    from debunk.v1 import debunk_pb2 as pb

    sides = {False: baseline or users, True: users}
    requests = {f: [pb.RankFeedRequest(user_id=u, limit=5) for u in us] for f, us in sides.items()}
    cpu = {False: 0.0, True: 0.0}
    for r in range(rounds + 1):
        for k in range(len(users)):
            for flag in (False, True) if (k + r) % 2 == 0 else (True, False):
                server._reader.live = flag  # the benchmark's switch (private on purpose)
                c0 = time.clock_gettime(clock)
                stub.RankFeed(requests[flag][k], timeout=5)
                if r:  # round 0 warms up
                    cpu[flag] += time.clock_gettime(clock) - c0
    server._reader.live = True
    n = rounds * len(users)
    return {"calls": n, "server_cpu_us_without": round(cpu[False] / n * 1e6, 1),
            "server_cpu_us_with": round(cpu[True] / n * 1e6, 1),
            "cpu_ratio": round(cpu[True] / cpu[False], 3)}  # fmt: skip


def folded_twins(settings: Any, users: list[str]) -> list[str]:
    """For each of ``users``: a twin user (``f`` for the id's first letter) whose snapshot
    state is the user's state with the live layers merged, and who has no live rows: what the
    next nightly would serve from the snapshot alone."""
    import asyncio

    from feature_store import keys
    from feature_store.codecs import pack_exposure
    from feature_store.reader import SnapshotReader
    from feature_store.transport.factory import open_transport

    async def merged() -> tuple[str, list[Any]]:
        reader = SnapshotReader(open_transport(settings))
        try:
            version = await reader.current_version()
            assert version is not None
            return version, [await reader.user_exposures(version, u) for u in users]
        finally:
            await reader.transport.aclose()

    version, states = asyncio.run(merged())
    twins = ["f" + u[1:] for u in users]
    client = settings.sync_client()
    pipe = client.pipeline(transaction=False)
    for twin, user_states in zip(twins, states, strict=True):
        values = {s.rumor_id: pack_exposure(s.exposures, s.first_ts, s.last_ts,
                                            s.strongest_action, s.surface_mask, s.logits,
                                            s.tag_score) for s in user_states}  # fmt: skip
        pipe.delete(keys.user_exposures(version, twin))
        pipe.hset(keys.user_exposures(version, twin), mapping=values)
    pipe.execute()
    client.close()
    return twins


def same_cards(server: Any, stub: Any, users: list[str], twins: list[str]) -> int:
    """How many of ``users`` (live state read) get exactly the cards of their twin (snapshot
    alone): all of them, or the same-answer comparison would not be one."""
    from debunk.v1 import debunk_pb2 as pb

    def cards(user: str, live: bool) -> list[bytes]:
        server._reader.live = live
        reply = stub.RankFeed(pb.RankFeedRequest(user_id=user, limit=5), timeout=5)
        for card in reply.cards:
            card.ClearField("score")  # it decays with the clock between the two calls
        return [c.SerializeToString() for c in reply.cards]

    same = sum(cards(u, True) == cards(t, False) for u, t in zip(users, twins, strict=True))
    server._reader.live = True
    return same


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, in one embedded Redis and one server."""
    import shutil

    from feature_store.connection import RedisSettings
    from feature_store.embedded import EmbeddedRedis

    shutil.rmtree(OUT, ignore_errors=True)
    result: dict[str, Any] = {"machine": machine(), "command": command_line()}
    with EmbeddedRedis(OUT / "redis") as redis_server:
        settings = RedisSettings(url=redis_server.url)
        client = settings.sync_client()
        first_rumor = write_snapshot(client, args.seed)
        rows = exposure_rows(args.exposures, args.seed)
        payloads = requests(rows, 10_000)
        feed_users = [f"s{u:06d}" for u in range(0, USERS, 97)]
        with served(settings) as (stub, server, clock):
            import grpc

            from debunk.v1 import debunk_pb2 as pb

            channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
            with FeedLoad(stub, feed_users) as load:
                r = rpc_rate(channel, payloads, args.in_flight)
            r["exposures_per_s"] = round(args.exposures / r["seconds"])
            r["rankfeed_calls_beside"] = load.calls
            result["rpc_ingest"] = r
            result["stream_ingest"] = []
            for per_entry in (1, args.rows_per_entry):
                with FeedLoad(stub, feed_users) as load:
                    s = stream_rate(client, redis_server.url, rows[: args.stream_exposures],
                                    per_entry)  # fmt: skip
                s["rankfeed_calls_beside"] = load.calls
                result["stream_ingest"].append(s)
            result["rpc_to_eligible"] = eligible_latency(stub, args.latency_users)
            result["stream_to_eligible"] = stream_latency(client, stub, redis_server.url,
                                                          args.latency_users // 4)  # fmt: skip
            live_users = sorted({u for u, i, _, _ in rows if i.startswith("t")})
            with_state = [u for u in live_users if int(u[1:]) < USERS][: args.feed_users]
            taken = set(live_users)
            same = [u for u in sorted(first_rumor) if u not in taken][: args.feed_users]
            req = pb.RecordExposuresRequest()
            for u in same:  # a live exposure to a rumor the snapshot already has: same cards
                req.events.add(user_id=u, item_id=f"t{first_rumor[u]:06d}", surface=1,
                               action=2).ts.seconds = int(time.time())  # fmt: skip
            stub.RecordExposures(req, timeout=10)
            twins = folded_twins(settings, with_state)
            result["rankfeed_same_cards"] = {
                "users": len(twins),
                "same": same_cards(server, stub, with_state, twins),
            }
            result["rankfeed_cost"] = {
                "live rows on rumors the snapshot has (same cards)": feed_cost(
                    server, stub, clock, same, args.feed_rounds),
                "live rows on new rumors vs the same states in the snapshot (same cards)":
                    feed_cost(server, stub, clock, with_state, args.feed_rounds, twins),
                "live rows on new rumors vs the snapshot without them (more cards)": feed_cost(
                    server, stub, clock, with_state, args.feed_rounds),
                "no live rows (the empty live keys read)": feed_cost(
                    server, stub, clock, twins, args.feed_rounds),
            }  # fmt: skip
        client.close()
    return result


def report(r: dict[str, Any]) -> None:
    """Print the tables."""
    a = r["rpc_ingest"]
    table = [["RecordExposures (10,000 per call)", a["exposures_per_s"], a["seconds"],
              a["rankfeed_calls_beside"]]]  # fmt: skip
    for s in r["stream_ingest"]:
        name = f"debunk ingest, {s['per_entry']} row(s) per entry"
        table.append([f"{name} (consumer time)", s["exposures_per_s_consumer"], s["consumer_s"],
                      s["rankfeed_calls_beside"]])  # fmt: skip
        table.append([f"{name} (process wall)", s["exposures_per_s_wall"], s["wall_s"], ""])
    print(format_table(["ingest path", "exposures/s", "seconds", "RankFeed calls beside"], table))
    print()
    print(format_table(
        ["debunk ingest, rows per entry", "process CPU us/row", "redis-server CPU us/row"],
        [[s["per_entry"], s["process_cpu_us_per_row"], s["redis_cpu_us_per_row"]]
         for s in r["stream_ingest"]],
    ))  # fmt: skip
    print()
    e, f = r["rpc_to_eligible"], r["stream_to_eligible"]
    print(format_table(
        ["exposure -> eligible", "users", "p50 ms", "p99 ms", "max ms"],
        [["RecordExposures answer -> RankFeed", e["users"], e["p50_ms"], e["p99_ms"],
          e["max_ms"]],
         ["XADD -> RankFeed (via debunk ingest)", f["users"], f["p50_ms"], f["p99_ms"],
          f["max_ms"]]],
    ))  # fmt: skip
    print()
    print(format_table(
        ["RankFeed users", "calls", "server CPU us without live state", "with", "ratio"],
        [[k, c["calls"], c["server_cpu_us_without"], c["server_cpu_us_with"], c["cpu_ratio"]]
         for k, c in r["rankfeed_cost"].items()],
    ))  # fmt: skip
    c = r["rankfeed_same_cards"]
    print(f"same cards with the live state read as from its folded twin: {c['same']}/{c['users']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--exposures", type=int, default=400_000, help="RecordExposures rows")
    p.add_argument("--stream-exposures", type=int, default=200_000)
    p.add_argument("--rows-per-entry", type=int, default=100, help="packed stream entries")
    p.add_argument("--in-flight", type=int, default=2, help="RecordExposures calls outstanding")
    p.add_argument("--latency-users", type=int, default=400)
    p.add_argument("--feed-users", type=int, default=300)
    p.add_argument("--feed-rounds", type=int, default=10)
    p.add_argument("--seed", type=int, default=19)
    return p.parse_args(argv)


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
