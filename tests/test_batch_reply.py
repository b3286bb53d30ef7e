"""RankFeedBatch's answer written straight to wire bytes (service.batch_reply, decision 0077): the
bytes are the RankFeedBatchResponse message's, byte for byte, for every mix of users, cards,
labels and flags (C and Python encoders); and over real gRPC and a real redis-server the batch
answer parses to exactly the per-user RankFeed answers (members, non-members, experiment arms
with a holdout and a cap of their own, delivery state, a user added live), with the metrics'
per-arm counts unchanged."""

from __future__ import annotations

import random
import time
import types
from collections import Counter as Tally
from collections.abc import Iterator

import grpc
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.experiments import Experiment, parse_arms
from feature_store import experiments
from feature_store.connection import RedisSettings
from service import cards, rpc
from service.batch_reply import BatchReply
from tests.fixtures.servers import ServiceThread, scrape, wait_for_health, wait_members_read
from tests.fixtures.service import SERVING, event, live_exposure, snapshot

NOW = time.time()
MEMBERS = [(f"u{i}", r, "click", 2 + i % 5) for i in range(30) for r in ("r1", "r2")[: 1 + i % 2]]
BATCH = "/debunk.v1.DebunkService/RankFeedBatch"


def _card(rng: random.Random, i: int) -> pb.DebunkCard:
    """A card with every kind of field, some left at their zero value."""
    c = pb.DebunkCard(debunk_id=f"d{i}", rumor_id=f"r{i}", title="辟谣" + "长" * rng.randrange(80),
                      url="https://x/" + "a" * rng.randrange(200), claim="明天全市停水",
                      score=rng.choice([0.0, rng.random()]), verdict="false",
                      update=rng.random() < 0.3)  # fmt: skip
    c.reason.text = "because"
    c.reason.exposures = rng.randrange(3)
    c.reason.model_affinity = rng.choice([0.0, 0.5])
    c.reason.first_exposed_at.seconds = rng.choice([0, 1_760_000_000])
    c.reason.surfaces.extend([1, 3][: rng.randrange(3)])
    return c


def test_feeds_wire_is_the_messages_bytes_in_c_and_in_python() -> None:
    rng = random.Random(77)
    ids = ["u1", "", "用户-七", "x" * 300, "u1"] + [f"n{i}" for i in range(200)]
    labels = [("", ""), ("exp", ""), ("", "arm"), ("feed-test", "holdout"), ("e" * 200, "a")]
    for trial in range(20):
        users = rng.sample(ids, rng.randrange(1, len(ids)))
        feeds, wires, tails = [], [], []
        for u in users:
            feed = pb.UserFeed(user_id=u)
            if rng.random() < 0.3:
                feed.cards.extend(_card(rng, j) for j in range(rng.randrange(1, 6)))
            exp, arm = rng.choice(labels) if trial % 2 else ("", "")
            feed.experiment, feed.arm = exp, arm
            feeds.append(feed)
            wires.append(pb.UserFeed(cards=feed.cards).SerializeToString() or None)
            tails.append(cards.label_wire(exp, arm) or None)
        version, degraded = rng.choice(["", "v1", "v" * 200]), rng.random() < 0.5
        want = pb.RankFeedBatchResponse(feeds=feeds, snapshot_version=version, degraded=degraded)
        got = cards.feeds_wire(users, wires, tails, version, degraded)
        assert got == want.SerializeToString()
        end = cards._response_end(version, degraded)
        assert cards.feeds_wire_python(users, wires, tails, end) == got
        if not any(wires) and not any(tails):
            assert cards.feeds_wire(users, None, None, version, degraded) == got
    assert cards.feeds_wire([], None, None) == b""
    with pytest.raises(TypeError):
        cards.feeds_wire(["u1"], [b"x", None], None)  # not as long as the users


def test_a_batch_reply_serializes_and_counts_as_its_message() -> None:
    exp = Experiment("feed-test", "s1", parse_arms("a:0.5,b:0.5:holdout"), NOW - 60, NOW + 60)
    users = [f"u{i}" for i in range(50)]
    arms = [exp.arm_of(u) for u in users]
    reply = BatchReply(snapshot_version="v7")
    reply.open(users, exp, arms)
    reply.cards[3] = pb.UserFeed(cards=[_card(random.Random(1), 1)]).SerializeToString()
    reply.degraded = True
    want = pb.RankFeedBatchResponse(snapshot_version="v7", degraded=True)
    for u, arm in zip(users, arms, strict=True):
        want.feeds.add(user_id=u, experiment=exp.name, arm=arm.name)
    want.feeds[3].cards.append(_card(random.Random(1), 1))
    assert reply.SerializeToString() == want.SerializeToString()
    assert reply.arm_counts() == Tally((f.experiment, f.arm) for f in want.feeds)
    plain = BatchReply(snapshot_version="v7")
    plain.open(users, None, [None] * len(users))
    assert plain.arm_counts() == {}
    assert (
        plain.SerializeToString()
        == pb.RankFeedBatchResponse(
            feeds=[pb.UserFeed(user_id=u) for u in users], snapshot_version="v7"
        ).SerializeToString()
    )


@pytest.fixture
def served(
    client: redis.Redis, settings: RedisSettings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[grpc.Channel, ServiceThread, Experiment]]:
    snapshot(client, "v1", MEMBERS)
    exp = Experiment("wire", "s1", parse_arms("model:0.4:model,rules:0.3:rules:1,hold:0.3:holdout"),
                     NOW - 3600, NOW + 3600)  # fmt: skip
    experiments.save(client, exp)
    # One clock for the per-user and the batch calls (recency moves every score).
    monkeypatch.setattr(rpc, "time", types.SimpleNamespace(time=lambda: NOW))
    svc = ServiceThread(settings, member_filter=True, metrics_port=0).start()
    try:
        with grpc.insecure_channel(svc.target) as channel:
            assert wait_for_health(channel, SERVING) == SERVING
            wait_members_read(svc)
            yield channel, svc, exp
    finally:
        svc.stop()
        experiments.delete(client, "wire")


def _per_user(stub: pb_grpc.DebunkServiceStub, users: list[str]) -> pb.RankFeedBatchResponse:
    """The batch answer built from each user's RankFeed answer."""
    want = pb.RankFeedBatchResponse(snapshot_version="v1")
    for u in users:
        r = stub.RankFeed(pb.RankFeedRequest(user_id=u, limit=3), timeout=5)
        assert not r.degraded and r.snapshot_version == "v1"
        want.feeds.add(user_id=u, cards=r.cards, experiment=r.experiment, arm=r.arm)
    return want


def test_the_batch_answer_parses_to_the_per_user_answers(
    served: tuple[grpc.Channel, ServiceThread, Experiment],
) -> None:
    channel, svc, exp = served
    stub = pb_grpc.DebunkServiceStub(channel)
    raw = channel.unary_unary(BATCH, request_serializer=pb.RankFeedBatchRequest.SerializeToString,
                              response_deserializer=None)  # fmt: skip
    deadline = time.monotonic() + 10
    while stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=3), timeout=5).experiment != "wire":
        assert time.monotonic() < deadline, "the experiment was never loaded"
    # delivery state: a served card (a cap of one for the rules arm), a dismissal
    marks = [event("u2", "d2", pb.EVENT_TYPE_SERVED, ts=int(NOW) - 60),
             event("u5", "d1", pb.EVENT_TYPE_DISMISS, ts=int(NOW) - 60),
             event("u8", "d1", pb.EVENT_TYPE_SERVED, ts=int(NOW) - 60)]  # fmt: skip
    stub.RecordEvents(pb.RecordEventsRequest(events=marks), timeout=5)
    # a user with no snapshot row, given live rows: a member within the poll
    later = [f"live-{i}" for i in range(12)]
    stored = stub.RecordExposures(
        pb.RecordExposuresRequest(events=[live_exposure(u, "i2", NOW - 30) for u in later]),
        timeout=5,
    )
    assert stored.stored == len(later)
    targeted = next(u for u in later if exp.arm_of(u).policy != "holdout")
    deadline = time.monotonic() + 5
    while not stub.RankFeed(pb.RankFeedRequest(user_id=targeted, limit=3), timeout=5).cards:
        assert time.monotonic() < deadline, "a live user was not served"
    users = [u for u, *_ in MEMBERS] + later + [f"x{i}" for i in range(300)] + ["u3", "x1"]
    random.Random(5).shuffle(users)
    request = pb.RankFeedBatchRequest(user_ids=users, limit=3)
    want = _per_user(stub, users)
    assert sum(len(f.cards) for f in want.feeds) > 40, "members should have cards"
    assert {f.arm for f in want.feeds} == {"model", "rules", "hold"}
    assert any(f.cards for f in want.feeds if f.user_id in later)
    before = _arm_counts(svc)
    got = raw(request, timeout=10)
    # the metrics count each batch user's arm once, as they did for the messages
    assert Tally(_arm_counts(svc)) - Tally(before) == Tally(f.arm for f in want.feeds)
    assert pb.RankFeedBatchResponse.FromString(got) == want
    assert stub.RankFeedBatch(request, timeout=10) == want
    # without cards the bytes are the message's, byte for byte
    strangers = [f"x{i}" for i in range(500)]
    alone = raw(pb.RankFeedBatchRequest(user_ids=strangers, limit=3), timeout=10)
    assert alone == _per_user(stub, strangers).SerializeToString()


def _arm_counts(svc: ServiceThread) -> dict[str, float]:
    """``debunk_feed_assignments_total`` per arm, as the server's metrics page says."""
    assert svc.server is not None and svc.server.metrics_port is not None
    return {
        line.split('arm="', 1)[1].split('"', 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in scrape(svc.server.metrics_port).splitlines()
        if line.startswith("debunk_feed_assignments_total{")
    }
