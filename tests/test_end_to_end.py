"""End to end: synthetic world -> nightly job -> Redis -> gRPC RankFeed, checked against an
independent recomputation of the expected cards from the raw files with DuckDB."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb
import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from feature_store.connection import RedisSettings
from offline.nightly.job import run_nightly
from ranking.clusters import cluster_claims
from tests.fixtures.servers import ServiceThread, wait_for_health

AUTHORITY_RANK = {"official": 0, "platform": 1, "fact_checker": 2, "media": 3}
# The feed rule of docs/ranking.md, written out again: within an exposure strength, half
# recency (halving every 2 days) and half priority (severity / 5 x the category weight).
CATEGORY_WEIGHT = {"emergency": 1.0, "public_safety": 1.0, "disaster": 0.9, "epidemic": 0.9,
                   "policy": 0.7, "livelihood": 0.6, "economy": 0.6, "other": 0.5}  # fmt: skip
HALF_LIFE_S = 2 * 24 * 3600


def expected_cards(
    world: Path, run_date: date, matched: Path, now: float | None = None
) -> dict[str, list[tuple[str, str, int, int]]]:
    """user -> [(rumor_id, debunk_id, exposures, last_ts seconds)] in feed order, from raw files
    (manual tags override an item's matcher tags; one card per claim cluster)."""
    now = time.time() if now is None else now
    rumors = [
        json.loads(line) for line in (world / "rumors.jsonl").read_text().splitlines() if line
    ]
    confirmed = {r["rumor_id"] for r in rumors if r["status"] == "confirmed"}
    by_id = {r["rumor_id"]: r for r in rumors}
    cluster = cluster_claims(
        {r["rumor_id"]: r["claim"] for r in rumors if r["rumor_id"] in confirmed and r["claim"]}
    )
    best: dict[str, tuple] = {}
    for cr in json.loads((world / "debunks.jsonld").read_text()):
        rid = cr["itemReviewed"]["identifier"]
        published = datetime.fromisoformat(cr["datePublished"].replace("Z", "+00:00")).timestamp()
        key = (AUTHORITY_RANK[cr["author"]["additionalType"]], -published, cr["identifier"])
        if rid not in best or key < best[rid][0]:
            best[rid] = (key, cr["identifier"])
    rows = duckdb.sql(
        f"""
        select e.user_id, t.rumor_id, count(*) as n,
               max(case e.action when 'impression' then 0 when 'click' then 1 when 'like' then 2
                                 when 'comment' then 3 when 'share' then 4 end) as strength,
               floor(epoch(max(e.ts)))::bigint as last_ts
        from read_parquet('{world}/exposures/*/*.parquet', hive_partitioning=true) e
        join (select distinct item_id, rumor_id from (
                select item_id, rumor_id from read_parquet('{world}/tagged_items.parquet')
                union all select item_id, rumor_id from read_parquet('{matched}')
                where item_id not in (
                    select item_id from read_parquet('{world}/tagged_items.parquet')))) t
          on e.item_id = t.item_id
        where e.dt <= '{run_date.isoformat()}'
        group by 1, 2
        """
    ).fetchall()
    per_user: dict[str, list[tuple]] = {}
    for user, rumor, n, strength, last_ts in rows:
        if rumor in confirmed and rumor in best:
            r = by_id[rumor]
            recency = 0.5 ** (max(0.0, now - last_ts) / HALF_LIFE_S)
            priority = r["severity"] / 5 * CATEGORY_WEIGHT[r["category"]]
            score = strength + 0.5 * recency + 0.5 * priority
            claim = cluster.get(rumor, rumor)
            per_user.setdefault(user, []).append(
                (-score, -last_ts, -r["severity"], claim, rumor, best[rumor][1], n, last_ts)
            )
    out: dict[str, list[tuple[str, str, int, int]]] = {}
    for u, items in per_user.items():
        claims: set[str] = set()
        for row in sorted(items):
            if row[3] not in claims:
                claims.add(row[3])
                out.setdefault(u, []).append((row[4], row[5], row[6], row[7]))
    return out


@pytest.fixture(scope="module")
def run_date() -> date:
    return date(2026, 10, 5)


@pytest.fixture
def served(
    small_world: Path, tmp_path: Path, client: redis.Redis, settings: RedisSettings, run_date: date
) -> Iterator[pb_grpc.DebunkServiceStub]:
    summary = run_nightly(small_world, run_date, tmp_path / "state", settings, train=False)
    assert summary["state"]["pairs"] > 0
    assert summary["match"]["auto"] > 0, "the library should find rumor copies nobody tagged"
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as channel:
            assert wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING) == 1
            stub = pb_grpc.DebunkServiceStub(channel)
            stub.matched = tmp_path / "state" / "match" / "matched_tags.parquet"  # type: ignore
            yield stub
    finally:
        svc.stop()


def test_served_cards_match_an_independent_recomputation(
    served: pb_grpc.DebunkServiceStub, small_world: Path, run_date: date
) -> None:
    expected = expected_cards(small_world, run_date, served.matched, time.time())
    assert len(expected) > 50, "the world should expose a fair number of users"
    sample = sorted(expected)[:: max(1, len(expected) // 150)]
    for user in sample:
        reply = served.RankFeed(pb.RankFeedRequest(user_id=user, limit=50), timeout=5)
        got = [
            (c.rumor_id, c.debunk_id, c.reason.exposures, c.reason.last_exposed_at.seconds)
            for c in reply.cards
        ]
        assert got == expected[user], user


def test_unexposed_users_get_nothing(
    served: pb_grpc.DebunkServiceStub, small_world: Path, run_date: date
) -> None:
    exposed = set(expected_cards(small_world, run_date, served.matched))
    unexposed = [f"u{i:08d}" for i in range(3000) if f"u{i:08d}" not in exposed][:30]
    assert len(unexposed) == 30
    for user in unexposed:
        reply = served.RankFeed(pb.RankFeedRequest(user_id=user, limit=10), timeout=5)
        assert list(reply.cards) == [], user


def test_withdrawn_rumors_are_never_served(
    served: pb_grpc.DebunkServiceStub, small_world: Path, run_date: date
) -> None:
    rumors = [json.loads(x) for x in (small_world / "rumors.jsonl").read_text().splitlines() if x]
    withdrawn = {r["rumor_id"] for r in rumors if r["status"] == "withdrawn"}
    assert withdrawn
    state = duckdb.sql(
        f"select distinct e.user_id from read_parquet('{small_world}/exposures/*/*.parquet') e "
        f"join read_parquet('{small_world}/tagged_items.parquet') t using (item_id) "
        f"where t.rumor_id in ({', '.join(repr(w) for w in withdrawn)}) limit 40"
    ).fetchall()
    assert state, "someone should have seen a withdrawn rumor"
    for (user,) in state:
        reply = served.RankFeed(pb.RankFeedRequest(user_id=user, limit=50), timeout=5)
        assert not {c.rumor_id for c in reply.cards} & withdrawn
