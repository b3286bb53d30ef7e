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
