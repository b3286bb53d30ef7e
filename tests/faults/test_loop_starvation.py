"""The event loop is never held by heavy in-contract calls: RankFeed calls with a 50 ms deadline
beside GroupWarnings of 100 × 4,000-character messages and RankFeedBatch calls of 1,000 users,
all against ``debunk serve`` over loopback (its own process and GIL; the heavy calls come
from another process). At most 1% of feeds miss their deadline (the machine's scheduler, not
the loop: a held loop fails every feed behind it)."""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import grpc
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from tests.fixtures.chaos import rounds
from tests.fixtures.servers import ServeProcess
from tests.fixtures.service import RUMORS, snapshot

USERS = [f"u{i:04d}" for i in range(1000)]
FEED_DEADLINE_S = 0.05
HEAVY_S = 3.0


def long_messages(seed: int) -> list[pb.GroupMessage]:
    """100 messages of 4,000 characters (the contract's limits), a few carrying a rumor."""
    rng = random.Random(seed)
    alphabet = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同"
    out = []
    for i in range(100):
        text = "".join(rng.choice(alphabet) for _ in range(4000))
        if i % 10 == 0:
            text = RUMORS[i % 2].claim + text[: 4000 - len(RUMORS[i % 2].claim)]
        out.append(pb.GroupMessage(message_id=f"m{i}", text=text))
    return out


@dataclass
class Load:
    """How the feeds fared, and how much heavy work ran beside them."""

    feeds: int = 0
    missed: int = 0
    other_errors: int = 0
    groups: int = 0
    batches: int = 0


def heavy_calls(target: str, seconds: float, counts: Any) -> None:
    """Two threads sending GroupWarnings and one sending RankFeedBatch for ``seconds``; run in
    a process of its own, so their (de)serialization never holds the feed client's GIL. How
    many of each completed goes into ``counts`` (groups, batches)."""
    group = pb.GroupWarningsRequest(group_id="g", messages=long_messages(1), member_ids=USERS)
    batch = pb.RankFeedBatchRequest(user_ids=USERS, limit=3)
    end = time.monotonic() + seconds

    def loop(kind: int) -> None:
        with grpc.insecure_channel(target) as ch:
            stub = pb_grpc.DebunkServiceStub(ch)
            while time.monotonic() < end:
                if kind == 0:
                    stub.GroupWarnings(group, timeout=30)
                else:
                    stub.RankFeedBatch(batch, timeout=30)
                with counts.get_lock():
                    counts[kind] += 1

    threads = [threading.Thread(target=loop, args=(k,)) for k in (0, 0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def feeds_beside_heavy_calls(target: str, seconds: float = HEAVY_S) -> Load:
    """RankFeed calls (50 ms deadline) in a loop while another process sends heavy calls."""
    load = Load()
    ctx = multiprocessing.get_context("spawn")
    counts = ctx.Array("i", 2)
    with grpc.insecure_channel(target) as ch:
        stub = pb_grpc.DebunkServiceStub(ch)
        stub.RankFeed(pb.RankFeedRequest(user_id=USERS[0], limit=3), timeout=5)  # connected
        heavy = ctx.Process(target=heavy_calls, args=(target, seconds, counts))
        heavy.start()
        try:
            while not (counts[0] or counts[1]):  # the heavy calls are under way
                assert heavy.is_alive()
                time.sleep(0.01)
            i = 0
            while heavy.is_alive():
                request = pb.RankFeedRequest(user_id=USERS[i % len(USERS)], limit=3)
                i += 1
                try:
                    stub.RankFeed(request, timeout=FEED_DEADLINE_S)
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                        load.missed += 1
                    else:
                        load.other_errors += 1
                load.feeds += 1
                time.sleep(0.005)
        finally:
            heavy.join(timeout=60)
    load.groups, load.batches = counts[0], counts[1]
    return load


@rounds
def test_feeds_keep_their_50ms_deadline_beside_heavy_groups_and_batches(
    client: redis.Redis, redis_url: str, chaos_round: int
) -> None:
    snapshot(client, "v1", [(u, r, "click", 2) for u in USERS for r in ("r1", "r2")])
    serve = ServeProcess(redis_url).start()
    try:
        load = feeds_beside_heavy_calls(serve.target)
    finally:
        assert serve.stop() == 0
    print(f"load: {load}")
    assert load.groups >= 2 and load.batches >= 2, "the heavy calls ran beside the feeds"
    assert load.feeds >= 100
    assert load.other_errors == 0
    # A loop held by a heavy call makes every feed queued behind it miss (tens per call, and
    # the heavy calls run ~15 times); a miss or two in 300 is the 2 shared cores' scheduler.
    assert load.missed <= load.feeds // 100, f"{load.missed} of {load.feeds} feeds missed 50 ms"
