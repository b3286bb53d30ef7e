"""The member filter on the pinned surfaces (issue 21, item 2): GroupWarnings for a chat of
``--group-members`` members of whom ``--member-share`` have an exposure (the rest none), and
SearchTop by a viewer with no exposure, against two ``debunk serve`` processes on one world
and one Redis: one reading every user (``DEBUNK_MEMBER_FILTER=0``, the baseline), one with
the filter. Both run at once and are loaded in alternating rounds, each round beside the
empty RPC of the same server (the machine is noisy); every ratio is the median round's.

    .venv/bin/python bench/bench_members.py --serve
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
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pyarrow.parquet as pq
import redis
from grpc_health.v1 import health_pb2

from bench.serve_load import Method, closed_loop
from bench.serve_process import ServerCpu, free_port_run, measured, wait_for_workers
from debunk.v1 import debunk_pb2 as pb
from feature_store import keys
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis, free_port
from feature_store.snapshots import current_version
from offline.nightly.job import run_nightly
from offline.synth.world import synthesize

SERVICE = "/debunk.v1.DebunkService/"
SERVERS = (("read_every_user", "0"), ("member_filter", "1"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The serving run's options (``bench_members.py --serve``)."""
    p.add_argument("--world-users", type=int, default=100_000)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--rumors", type=int, default=30_000, help="rumor library size")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--workers", type=int, default=1, help="worker processes of each server")
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=5, help="0: only build the world (--reuse)")
    p.add_argument("--group-members", type=int, default=200)
    p.add_argument("--member-share", type=float, default=0.05)
    p.add_argument("--reuse", metavar="DIR", default="", help="keep the world and Redis in DIR")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build (or reuse) the world and its snapshot, serve it twice, load both; the results."""
    work = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="filters-bench-"))
    start = date.today() - timedelta(days=args.days)
    built = work / "built.json"
    if not built.exists():
        synthesize(work / "world", users=args.world_users, days=args.days, seed=args.seed,
                   start=start, rumors=args.rumors)  # fmt: skip
    with EmbeddedRedis(work / "redis") as server:
        if not built.exists():
            run_nightly(work / "world", start + timedelta(days=args.days - 1), work / "state",
                        RedisSettings(url=server.url))  # fmt: skip
            built.write_text("{}")
        if args.rounds == 0:  # build the world only (the untimed part, outside the lock)
            return {"built": str(work)}
        requests = _requests(server.url, work, args)
        procs = {name: _serve(server.local_url, flag, args) for name, flag in SERVERS}
        try:
            for _, _, metrics in procs.values():
                wait_for_workers(metrics, args.workers)
            result = asyncio.run(_load(procs, requests, args))
        finally:
            for proc, _, _ in procs.values():
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    return {"users_exposed_in_group": requests["exposed_in_group"], **result}


def _requests(url: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The calls of the load: groups of exposed and unexposed members whose five messages are
    tagged items (so warnings are pinned and members' exposures asked), and searches for
    confirmed rumors' claims by viewers with no exposure."""
    rng = np.random.default_rng(args.seed)
    exposed = sorted(set(pq.read_table(work / "state/current/exposures.parquet",
                                       columns=["user_id"])["user_id"].to_pylist()))  # fmt: skip
    known = set(exposed)
    strangers = [u for i in range(args.world_users) if (u := f"u{i:08d}") not in known]
    strangers += [f"n{i:08d}" for i in range(20_000)]  # ids no log has
    client = redis.Redis.from_url(url)
    version = current_version(client)
    items = sorted(k.decode() for k in client.hkeys(keys.items(version)))
    rumors = [json.loads(v) for v in client.hvals(keys.rumors(version))]
    claims = sorted(r["claim"] for r in rumors if r.get("status") == "confirmed")
    n_in = max(1, round(args.group_members * args.member_share))
    groups = []
    for g in range(2000):
        members = list(rng.choice(exposed, n_in, replace=False))
        members += list(rng.choice(strangers, args.group_members - n_in, replace=False))
        rng.shuffle(members)
        tagged = rng.choice(items, 5, replace=False)
        messages = [pb.GroupMessage(message_id=f"m{j}", item_id=i) for j, i in enumerate(tagged)]
        groups.append(pb.GroupWarningsRequest(group_id=f"g{g}", messages=messages,
                                              member_ids=members))  # fmt: skip
    searches = [
        pb.SearchTopRequest(query=claims[i % len(claims)][:200], user_id=strangers[i], limit=5)
        for i in rng.permutation(min(len(strangers), 5000))
    ]
    return {"groups": groups, "searches": searches, "exposed_in_group": n_in}


def _serve(redis_url: str, member_filter: str, args: argparse.Namespace) -> tuple[Any, int, int]:
    """A ``debunk serve`` process with ``DEBUNK_MEMBER_FILTER=member_filter``; its ports."""
    port, metrics = free_port(), free_port_run(args.workers)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--log-level", "WARNING", "serve", "--port", str(port),
         "--workers", str(args.workers), "--metrics-port", str(metrics)],
        env={**os.environ, "REDIS_URL": redis_url, "DEBUNK_MEMBER_FILTER": member_filter},
    )  # fmt: skip
    return proc, port, metrics


async def _load(
    procs: dict[str, tuple[Any, int, int]], requests: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Alternating rounds over both servers: empty RPC, GroupWarnings, SearchTop each."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = {
        name: [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[*options, ("c", i)])
               for i in range(args.channels)]
        for name, (_, port, _) in procs.items()
    }  # fmt: skip
    try:
        calls = {name: _calls(chs, requests) for name, chs in channels.items()}
        checked = await _check(calls)
        rounds: list[dict[str, Any]] = []
        for name in calls:  # warm up
            for call in calls[name].values():
                await closed_loop(call, args.concurrency, 1.0)
        for k in range(args.rounds):
            row: dict[str, Any] = {}
            order = list(procs.items())
            for name, (proc, _, _) in order[::-1] if k % 2 else order:  # neither always first
                cpu = ServerCpu(proc.pid)
                row[name] = {
                    what: await measured(cpu, closed_loop(call, args.concurrency, args.seconds))
                    for what, call in calls[name].items()
                }
            rounds.append(row)
        return {"replies_checked": checked, **_summary(rounds)}
    finally:
        for chs in channels.values():
            for c in chs:
                await c.close()


def _calls(channels: list[grpc.aio.Channel], requests: dict[str, Any]) -> dict[str, Any]:
    """The empty RPC, GroupWarnings and SearchTop callers of one server (requests serialized
    up front, replies kept as bytes)."""
    empty = Method(channels, "/grpc.health.v1.Health/Check", health_pb2.HealthCheckResponse, True)
    group = Method(channels, SERVICE + "GroupWarnings", pb.GroupWarningsResponse, True)
    search = Method(channels, SERVICE + "SearchTop", pb.SearchTopResponse, True)
    ping = empty.prepare(health_pb2.HealthCheckRequest(service=""))
    groups = [group.prepare(r) for r in requests["groups"]]
    searches = [search.prepare(r) for r in requests["searches"]]

    async def call_empty(i: int) -> object:
        return await empty(ping, timeout=5)

    async def call_group(i: int) -> object:
        return await group(groups[i % len(groups)], timeout=5)

    async def call_search(i: int) -> object:
        return await search(searches[i % len(searches)], timeout=5)

    return {"empty": call_empty, "group_warnings": call_group, "search_top": call_search,
            "_methods": (group, search)}  # fmt: skip


async def _check(calls: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Both servers give the same answers to a sample, none degraded, with warnings and
    exposed members (else the load would measure an empty or error path)."""
    answers = {}
    for name, by in calls.items():
        group, search = by.pop("_methods")
        got = []
        for i in range(50):
            g = group.parse(await by["group_warnings"](i))
            s = search.parse(await by["search_top"](i))
            if g.degraded or s.degraded:
                raise RuntimeError(f"{name} answered degraded before the load")
            got.append((g.SerializeToString(deterministic=True), [c.rumor_id for c in s.cards]))
        answers[name] = got
    if answers["member_filter"] != answers["read_every_user"]:
        raise RuntimeError("the two servers answered differently")
    sample = [pb.GroupWarningsResponse.FromString(g) for g, _ in answers["member_filter"]]
    warned = sum(len(r.warnings) for r in sample)
    exposed = sum(len(w.exposed_member_ids) for r in sample for w in r.warnings)
    searched = sum(bool(cards) for _, cards in answers["member_filter"])
    if not warned or not exposed or not searched:
        raise RuntimeError("the sample has no warnings, exposed members or pinned searches")
    return {"sampled": 50, "group_warnings": warned, "exposed_members": exposed,
            "searches_with_cards": searched}  # fmt: skip


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per server and RPC: best calls/s, median ratio to its own empty RPC, least server CPU
    per call; and the filter's gain over reading every user (median of the rounds' ratios)."""
    out: dict[str, Any] = {}
    for name, _ in SERVERS:
        out[name] = {}
        for what in ("empty", "group_warnings", "search_top"):
            rows = [r[name][what] for r in rounds]
            out[name][what] = {
                "per_s": max(r["per_s"] for r in rows),
                "server_cpu_us_per_call": min(r["server_cpu_us_per_call"] for r in rows),
            }
            if what != "empty":
                ratios = [r[name][what]["per_s"] / r[name]["empty"]["per_s"] for r in rounds]
                out[name][what]["over_empty"] = round(_median(ratios), 3)
    gains = {}
    for what in ("group_warnings", "search_top"):
        per_round = [
            r["member_filter"][what]["per_s"] / r["read_every_user"][what]["per_s"] for r in rounds
        ]
        cpu = [
            r["member_filter"][what]["server_cpu_us_per_call"]
            / max(0.1, r["read_every_user"][what]["server_cpu_us_per_call"])
            for r in rounds
        ]
        gains[what] = {
            "calls_per_s": round(_median(per_round), 3),
            "calls_per_s_rounds": [round(x, 3) for x in sorted(per_round)],
            "server_cpu_per_call": round(_median(cpu), 3),
        }
    out["member_filter_over_read_every_user"] = gains
    return out


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]
