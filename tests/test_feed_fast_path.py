"""The served feed (the fused pass, cards as wire bytes) against the reference pipeline over real
gRPC and a real redis-server: a seeded synthetic world through the nightly job (with the learned
model), an experiment with holdout, rules (its own daily cap) and model arms, delivery state
(served cards spending caps, impressions, dismissals) and live exposures recorded through the
service. Every RankFeed and RankFeedBatch answer must equal, message for message, what
``ranking.pipeline.rank_feed`` and ``service.cards.to_card`` give on the same store reads."""

from __future__ import annotations

import asyncio
import random
import time
import types
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import grpc
import pyarrow.parquet as pq
import pytest
import redis
from google.protobuf.timestamp_pb2 import Timestamp

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.experiments import Experiment
from feature_store import experiments
from feature_store.connection import RedisSettings
from feature_store.reader import SnapshotReader
from feature_store.transport.factory import open_transport
from offline.nightly.job import run_nightly
from ranking.pipeline import rank_feed
from ranking.policy import ServingPolicy, feed_rules
from service import rpc
from service.cards import to_card
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING, event

NOW = time.time()


@pytest.fixture(scope="module")
def world_state(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fast-path-state")


@pytest.fixture
def served(
    small_world: Path,
    world_state: Path,
    client: redis.Redis,
    settings: RedisSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[pb_grpc.DebunkServiceStub, Experiment]]:
    run_nightly(small_world, date(2026, 10, 5), world_state, settings)
    exp = Experiment.from_dict({"name": "fastpath", "arms": [
        {"name": "hold", "share": 0.2, "policy": "holdout"},
        {"name": "rules", "share": 0.3, "policy": "rules", "feed_daily_cap": 2},
        {"name": "model", "share": 0.5, "policy": "model"}],
        "start": NOW - 3600, "end": NOW + 3600})  # fmt: skip
    experiments.save(client, exp)
    # One clock for the server's calls and the reference (recency moves every score).
    monkeypatch.setattr(rpc, "time", types.SimpleNamespace(time=lambda: NOW))
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as channel:
            assert wait_for_health(channel, SERVING) == SERVING
            yield pb_grpc.DebunkServiceStub(channel), exp
    finally:
        svc.stop()
        experiments.delete(client, "fastpath")


def _history(stub: pb_grpc.DebunkServiceStub, users: list[str], rng: random.Random) -> None:
    """Served, seen and dismissed cards for a third of ``users`` (from their own answers)."""
    events = []
    for user in users:
        if rng.random() > 0.33:
            continue
        cards = stub.RankFeed(pb.RankFeedRequest(user_id=user, limit=5), timeout=5).cards
        for c in cards:
            kind = rng.choice([pb.EVENT_TYPE_SERVED, pb.EVENT_TYPE_SERVED, pb.EVENT_TYPE_IMPRESSION,
                               pb.EVENT_TYPE_DISMISS])  # fmt: skip
            events.append(event(user, c.debunk_id, kind, ts=int(NOW) - 60, rumor_id=c.rumor_id))
    for lo in range(0, len(events), 500):
        stub.RecordEvents(pb.RecordEventsRequest(events=events[lo : lo + 500]), timeout=10)


def _live(
    stub: pb_grpc.DebunkServiceStub, world: Path, users: list[str], rng: random.Random
) -> None:
    """Live exposures on tagged items for some exposed users and some with no log row."""
    items = pq.read_table(world / "tagged_items.parquet", columns=["item_id"])["item_id"]
    items = sorted(set(items.to_pylist()))
    rows = []
    for user in users:
        e = pb.LiveExposure(user_id=user, item_id=rng.choice(items), surface=pb.SURFACE_FEED,
                            action=rng.choice([pb.ACTION_CLICK, pb.ACTION_SHARE]))  # fmt: skip
        e.ts.CopyFrom(Timestamp(seconds=int(NOW) - 30))
        rows.append(e)
    reply = stub.RecordExposures(pb.RecordExposuresRequest(events=rows), timeout=10)
    assert reply.stored > 0


async def _expected(
    settings: RedisSettings, exp: Experiment, users: list[str]
) -> list[pb.RankFeedResponse]:
    """The reference answers: the same reads, ``rank_feed`` and ``to_card``."""
    reader = SnapshotReader(open_transport(settings))
    try:
        version = await reader.current_version()
        assert version is not None
        catalog = await reader.catalog(version)
        views = await reader.feeds_view(version, users, surface="feed", now=NOW)
    finally:
        await reader.transport.aclose()
    out = []
    for user, (exposures, delivery, model) in zip(users, views, strict=True):
        arm = exp.arm_of(user)
        reply = pb.RankFeedResponse(snapshot_version=version, experiment=exp.name, arm=arm.name)
        rules = feed_rules(ServingPolicy(), arm)
        budget = rules.budget(5, delivery.served_today)
        if budget > 0:
            model = model if rules.learned_ranker else None
            for c in rank_feed(exposures, catalog, now=NOW, limit=budget, delivery=delivery,
                               model=model):  # fmt: skip
                to_card(c, reply.cards.add())
        out.append(reply)
    return out


def test_served_feeds_equal_the_reference_pipeline(
    served: tuple[pb_grpc.DebunkServiceStub, Experiment],
    small_world: Path,
    world_state: Path,
    settings: RedisSettings,
) -> None:
    stub, exp = served
    rng = random.Random(21)
    exposed = sorted(set(pq.read_table(world_state / "current" / "exposures.parquet",
                                       columns=["user_id"])["user_id"].to_pylist()))  # fmt: skip
    assert len(exposed) > 300
    users = rng.sample(exposed, 300)
    strangers = [f"u-live-{i}" for i in range(20)]
    _history(stub, users, rng)
    _live(stub, small_world, users[:40] + strangers, rng)
    asked = users + strangers + [f"nobody-{i}" for i in range(20)]
    want = asyncio.run(_expected(settings, exp, asked))
    assert sum(len(w.cards) for w in want) > 300, "the world should give cards to rank"
    got = [stub.RankFeed(pb.RankFeedRequest(user_id=u, limit=5), timeout=5) for u in asked]
    for user, g, w in zip(asked, got, want, strict=True):
        assert g == w, user
    assert any(w.cards for w in want[300:320]), "live exposures give new users cards"
    batch = stub.RankFeedBatch(pb.RankFeedBatchRequest(user_ids=asked, limit=5), timeout=30)
    for user, feed, w in zip(asked, batch.feeds, want, strict=True):
        assert (feed.user_id, list(feed.cards), feed.experiment, feed.arm) == (
            user, list(w.cards), w.experiment, w.arm), user  # fmt: skip
