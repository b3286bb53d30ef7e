"""The serving benchmark's measurement schedule: which RPCs run, in which rounds, at which
rates, against one server (``run_load``), and the dictionary of results it returns."""

from __future__ import annotations

import argparse
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from bench.serve_load import Method, closed_loop, open_loop_rounds
from bench.serve_process import ServerCpu, measured
from debunk.v1 import debunk_pb2 as pb


def _pinned_rate(args: argparse.Namespace, at_max: dict) -> float:
    """The open-loop rate for SearchTop/GroupWarnings: --pinned-rate, or half their max."""
    return args.pinned_rate if args.pinned_rate > 0 else at_max["per_s"] / 2


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
    target: str,
    mixes: dict[str, list[str]],
    texts: list[str],
    args: argparse.Namespace,
    cpu: ServerCpu,
) -> dict[str, object]:
    """Every measure against one server: RankFeed and RankFeedBatch on each of ``mixes`` (name
    -> the users its calls cycle through: ``exposed`` and ``mix``), the empty RPC in the same
    rounds and at the same rates; SearchTop and GroupWarnings unless ``--no-pinned``."""
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
        ping_req = check_rpc.prepare(health_pb2.HealthCheckRequest(service=""))
        feeds = {name: _feed_calls(feed_rpc, batch_rpc, users) for name, users in mixes.items()}

        async def ping(i: int) -> object:
            return await check_rpc(ping_req, timeout=5)

        checked = await check_replies(feed_rpc, feeds["exposed"][2], batch_rpc,
                                      feeds["exposed"][3])  # fmt: skip
        for feed, _, _, _ in feeds.values():
            await closed_loop(feed, args.concurrency, 1.0)  # warm up
        await closed_loop(ping, args.concurrency, 1.0)
        rounds = []
        for _ in range(args.rounds):
            empty = await measured(cpu, closed_loop(ping, args.concurrency, args.seconds))
            row: dict[str, Any] = {"empty": empty}
            for name, (feed, _, _, _) in feeds.items():
                got = await measured(cpu, closed_loop(feed, args.concurrency, args.seconds))
                row[name] = {**got, "ratio": round(got["per_s"] / empty["per_s"], 3)}
            rounds.append(row)
        out: dict[str, Any] = {
            "client": args.client,
            "replies_checked": checked,
            "empty_unary_per_s": max(r["empty"]["per_s"] for r in rounds),
            "empty_server_cpu_us_per_call": min(
                r["empty"]["server_cpu_us_per_call"] for r in rounds
            ),
        }
        rounds_n = args.latency_rounds
        for name, (feed, batch, _, _) in feeds.items():
            ratios = sorted(r[name]["ratio"] for r in rounds)
            rank_max = max(r[name]["per_s"] for r in rounds)
            half = await open_loop_rounds(feed, rank_max / 2, args.seconds, rounds_n)
            # The floor of this harness: the empty RPC at the same rate, same client, same cores.
            ping_half = await open_loop_rounds(ping, rank_max / 2, args.seconds, rounds_n)
            batch_rounds = [
                await measured(
                    cpu, closed_loop(batch, args.batches_in_flight, args.seconds), BATCH_USERS
                )  # fmt: skip
                for _ in range(args.batch_rounds)
            ]
            # Users/s from the calls and the time (a round is a few dozen batches: per_s,
            # rounded to whole batches, would move the figure in steps of 1,000 users/s).
            for r in batch_rounds:
                r["users_per_s"] = round(r["calls"] * BATCH_USERS / r["seconds"])
            best = max(batch_rounds, key=lambda r: r["users_per_s"])
            out[name] = {
                "rank_feed_per_s": rank_max,
                "rank_feed_over_empty": ratios[len(ratios) // 2],  # the median round
                "rank_feed_over_empty_rounds": ratios,
                "rank_feed_server_cpu_us_per_call": min(
                    r[name]["server_cpu_us_per_call"] for r in rounds
                ),
                "rank_feed_at_half_max": half,
                "empty_unary_at_that_rate": ping_half,
                "p99_over_empty_p99": round(half["p99_ms"] / ping_half["p99_ms"], 2),
                "rank_feed_batch_users_per_s": best["users_per_s"],
                "rank_feed_batch_rounds_users_per_s": [r["users_per_s"] for r in batch_rounds],
                "rank_feed_batch_server_cpu_us_per_user": best["server_cpu_us_per_user"],
                "rank_feed_batch_degraded": batch.degraded,
            }
        if not args.no_pinned:
            out.update(await _pinned(channels, raw, mixes["exposed"], texts, args, ping, cpu))
        out["server_rss_mb"] = cpu.rss_mb()
        return out
    finally:
        for c in channels:
            await c.close()


BATCH_USERS = 1000


def _feed_calls(feed_rpc: Method, batch_rpc: Method, users: list[str]) -> tuple[Any, ...]:
    """The RankFeed and RankFeedBatch (1,000 users) callers cycling over ``users``' requests,
    serialized before the load, and the requests themselves."""
    feed_reqs = [feed_rpc.prepare(pb.RankFeedRequest(user_id=u, limit=5)) for u in users]
    batch_reqs = [
        batch_rpc.prepare(pb.RankFeedBatchRequest(user_ids=users[s : s + BATCH_USERS], limit=5))
        for s in range(0, max(1, len(users) - BATCH_USERS), BATCH_USERS)
    ]

    async def feed(i: int) -> object:
        return await feed_rpc(feed_reqs[i % len(feed_reqs)], timeout=5)

    return feed, _Batches(batch_rpc, batch_reqs), feed_reqs, batch_reqs


class _Batches:
    """The RankFeedBatch caller, counting degraded answers (a store read given up: no cards
    ranked, so a fast answer that is not the work being measured)."""

    def __init__(self, rpc: Method, requests: list[Any]) -> None:
        self.rpc = rpc
        self.requests = requests
        self.degraded = 0

    async def __call__(self, i: int) -> object:
        reply = await self.rpc(self.requests[i % len(self.requests)], timeout=30)
        self.degraded += self.rpc.parse(reply).degraded
        return reply


async def _pinned(
    channels: list[grpc.aio.Channel],
    raw: bool,
    users: list[str],
    texts: list[str],
    args: argparse.Namespace,
    ping: Any,
    cpu: ServerCpu,
) -> dict[str, Any]:
    """SearchTop and GroupWarnings (5 messages, 20 members): max, then latency at the pinned
    rate, the empty RPC beside them at that rate."""
    service = "/debunk.v1.DebunkService/"
    search_rpc = Method(channels, service + "SearchTop", pb.SearchTopResponse, raw)
    group_rpc = Method(channels, service + "GroupWarnings", pb.GroupWarningsResponse, raw)
    n_texts = min(len(texts), 20_000)
    search_reqs = [
        search_rpc.prepare(pb.SearchTopRequest(query=texts[i][:200], user_id=users[i % len(users)]))
        for i in range(n_texts)
    ]
    group_reqs = [group_rpc.prepare(group_request(texts, users, i)) for i in range(n_texts)]

    async def search(i: int) -> object:
        return await search_rpc(search_reqs[i % len(search_reqs)], timeout=5)

    async def group(i: int) -> object:
        return await group_rpc(group_reqs[i % len(group_reqs)], timeout=5)

    rounds_n = args.latency_rounds
    search_max = await closed_loop(search, args.concurrency, args.seconds)
    searches = await open_loop_rounds(
        search, _pinned_rate(args, search_max), args.seconds, rounds_n
    )
    group_max = await closed_loop(group, args.concurrency, args.seconds)
    groups = await open_loop_rounds(group, _pinned_rate(args, group_max), args.seconds, rounds_n)
    # The harness floor at the pinned surfaces' rate (when it is one fixed rate).
    ping_pinned = (
        await open_loop_rounds(ping, args.pinned_rate, args.seconds, rounds_n)
        if args.pinned_rate > 0
        else None
    )
    return {
        "search_top_max_per_s": search_max["per_s"],
        "search_top": searches,
        "group_warnings_max_per_s": group_max["per_s"],
        "group_warnings_5_messages_20_members": groups,
        "empty_unary_at_pinned_rate": ping_pinned,
    }
