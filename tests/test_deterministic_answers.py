"""Deterministic pinned answers over real gRPC and a real redis-server: many rumors share a
score, yet the same text pins the same rumors after a restart, after the snapshot is reloaded
with its hashes written in another order, and on SearchTop and GroupWarnings alike."""

from __future__ import annotations

import random

import grpc
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.records import Debunk, Rumor
from feature_store.connection import RedisSettings
from feature_store.snapshots import SnapshotWriter
from matching import Thresholds
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING, exposure_batch

STORIES = [
    ("武汉地铁3号线发生踩踏事故，现场一片混乱，已经有人员伤亡", "emergency"),
    ("合肥后天起全市停电检修，冰箱里的东西赶紧处理掉", "livelihood"),
    ("扬州南湖片区自来水被人投毒，千万不要喝", "public_safety"),
    ("香蕉和啤酒一起吃会中毒，已经有人进医院了", "epidemic"),
]


def library() -> tuple[list[Rumor], list[Debunk]]:
    """Five posts of each story with the very same claim (so they tie on every query) and a
    spread of severities, each with two debunks; no clusters (ties are the point)."""
    rumors, debunks = [], []
    for s, (claim, category) in enumerate(STORIES):
        for k in range(5):
            rid = f"r{s}{k}"
            rumors.append(Rumor(rid, claim, category, 1 + (k * 3) % 5, "false", "confirmed"))
            for authority in ("media", "platform"):
                did = f"d{s}{k}{authority[0]}"
                debunks.append(
                    Debunk(did, (rid,), f"辟谣 {did}", f"https://x/{did}", "p", authority)
                )
    return rumors, debunks


QUERIES = [claim for claim, _ in STORIES] + [
    "//@小明: 真的假的？武汉地铁3号线发生踩踏事故 [泪]",
    "听说合肥后天全市停电检修，冰箱里的东西赶紧处理掉！！",
    "扬州南湖 自来水 投毒",
    "香蕉啤酒一起吃会中毒吗",
]


def write(client: redis.Redis, version: str, seed: int) -> None:
    """The library as a snapshot, rumors and debunks in a seeded order (another Redis hash
    order), with one user's exposures so SearchTop's personal ordering is exercised too."""
    rumors, debunks = library()
    rng = random.Random(seed)
    rng.shuffle(rumors)
    rng.shuffle(debunks)
    w = SnapshotWriter(client, version)
    w.write_catalog(rumors, debunks)
    w.write_exposures([exposure_batch([("u1", "r13", "share", 2), ("u1", "r32", "click", 1)])])
    w.commit()


def answers(settings: RedisSettings) -> dict[str, list]:
    """Every query's SearchTop cards (anonymous and for u1) and GroupWarnings warnings, from a
    freshly started server."""
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            stub = pb_grpc.DebunkServiceStub(ch)
            out: dict[str, list] = {}
            for q in QUERIES:
                for user in ("", "u1"):
                    reply = stub.SearchTop(
                        pb.SearchTopRequest(query=q, user_id=user, limit=10), timeout=5
                    )
                    assert not reply.degraded
                    out[f"search:{user}:{q}"] = [
                        (c.rumor_id, c.debunk_id, round(c.score, 6)) for c in reply.cards
                    ]
            reply = stub.GroupWarnings(
                pb.GroupWarningsRequest(
                    group_id="g1",
                    messages=[
                        pb.GroupMessage(message_id=f"m{i}", text=q, sender_id="u2")
                        for i, q in enumerate(QUERIES)
                    ],
                ),
                timeout=5,
            )
            warned = {w.message_id: w for w in reply.warnings}
            for i, q in enumerate(QUERIES):
                w = warned.get(f"m{i}")
                out[f"group:{q}"] = (
                    [(w.card.rumor_id, w.card.debunk_id, round(w.match_score, 6))] if w else []
                )
            return out
    finally:
        svc.stop()


def test_answers_survive_restarts_and_reloads_and_agree_across_surfaces(
    client: redis.Redis, settings: RedisSettings
) -> None:
    write(client, "v1", seed=1)
    first = answers(settings)
    assert answers(settings) == first  # a plain restart
    write(client, "v2", seed=2)  # the same snapshot reloaded, its hashes in another order
    assert answers(settings) == first
    write(client, "v3", seed=3)
    assert answers(settings) == first

    high = Thresholds().high  # posted text answers at this; a search query at Thresholds().search
    for q in QUERIES:
        search = first[f"search::{q}"]
        assert search, q
        # The same text, the same rumor: GroupWarnings answers exactly when the top match reaches
        # the posted-text threshold, and then with SearchTop's first card.
        expected = search[:1] if search[0][2] >= high else []
        assert first[f"group:{q}"] == expected, q
    assert any(first[f"group:{q}"] for q in QUERIES)
    # Ties go to the more severe rumor, then the smaller id; its most authoritative debunk.
    top = first[f"search::{STORIES[0][0]}"]
    assert [r for r, _, _ in top] == ["r03", "r01", "r04", "r02", "r00"]
    assert top[0][1] == "d03p"
    # A searcher who saw one of the tied rumors gets it first.
    assert first[f"search:u1:{STORIES[1][0]}"][0][0] == "r13"
