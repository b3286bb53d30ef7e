"""Experiments in the service: every feed answer and event carries the experiment and arm; a
holdout arm gets no targeted debunks; an arm's own cap applies. Real gRPC, real redis-server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.experiments import Experiment, parse_arms
from feature_store import experiments, keys
from feature_store.connection import RedisSettings
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING, event, snapshot

USERS = [f"u{i}" for i in range(1, 41)]
ROWS = [(u, r, "click", 2) for u in USERS for r in ("r1", "r2")]


def start(client: redis.Redis, arms: str) -> Experiment:
    now = time.time()
    exp = Experiment("feed-test", "s1", parse_arms(arms), now - 60, now + 3600)
    experiments.save(client, exp)
    return exp


@pytest.fixture
def stub(client: redis.Redis, settings: RedisSettings) -> Iterator[pb_grpc.DebunkServiceStub]:
    snapshot(client, "v1", ROWS)
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            yield pb_grpc.DebunkServiceStub(ch)
    finally:
        svc.stop()


def labelled(
    stub: pb_grpc.DebunkServiceStub, user: str, timeout: float = 10
) -> pb.RankFeedResponse:
    """RankFeed, polled until the server has loaded the experiment config."""
    deadline = time.monotonic() + timeout
    while True:
        reply = stub.RankFeed(pb.RankFeedRequest(user_id=user, limit=5), timeout=5)
        if reply.experiment or time.monotonic() > deadline:
            return reply


def test_without_an_experiment_answers_carry_no_labels(stub: pb_grpc.DebunkServiceStub) -> None:
    reply = stub.RankFeed(pb.RankFeedRequest(user_id="u1", limit=5), timeout=5)
    assert (reply.experiment, reply.arm) == ("", "") and len(reply.cards) == 2


def test_every_answer_carries_the_users_arm_and_holdout_gets_no_cards(
    client: redis.Redis, stub: pb_grpc.DebunkServiceStub
) -> None:
    exp = start(client, "control:0.5,holdout:0.5:holdout")
    assert labelled(stub, "u1").experiment == "feed-test"
    arms = {}
    for u in USERS:
        reply = stub.RankFeed(pb.RankFeedRequest(user_id=u, limit=5), timeout=5)
        assert reply.experiment == "feed-test" and reply.arm == exp.arm_of(u).name
        assert not reply.degraded
        assert len(reply.cards) == (0 if reply.arm == "holdout" else 2), u
        arms[u] = reply.arm
    assert set(arms.values()) == {"control", "holdout"}
    batch = stub.RankFeedBatch(pb.RankFeedBatchRequest(user_ids=USERS, limit=5), timeout=5)
    assert [(f.user_id, f.arm) for f in batch.feeds] == list(arms.items())
    assert all(f.experiment == "feed-test" for f in batch.feeds)
    assert [len(f.cards) for f in batch.feeds] == [
        0 if a == "holdout" else 2 for a in arms.values()
    ]


def test_an_arm_with_its_own_daily_cap_gets_at_most_that_many(
    client: redis.Redis, stub: pb_grpc.DebunkServiceStub
) -> None:
    exp = start(client, "one:0.5:rules:1,two:0.5:rules:5")
    labelled(stub, "u1")
    for u in USERS[:10]:
        reply = stub.RankFeed(pb.RankFeedRequest(user_id=u, limit=5), timeout=5)
        assert len(reply.cards) == (1 if exp.arm_of(u).name == "one" else 2)


def test_events_are_labelled_with_the_arm_the_user_was_in(
    client: redis.Redis, stub: pb_grpc.DebunkServiceStub
) -> None:
    exp = start(client, "control:0.5,treatment:0.5")
    labelled(stub, "u1")
    now = int(time.time())
    stub.RecordEvents(
        pb.RecordEventsRequest(
            events=[
                event("u1", "d1", pb.EVENT_TYPE_IMPRESSION, now),
                event("u2", "d1", pb.EVENT_TYPE_IMPRESSION, now - 7200),  # before the start
                event("u3", "d1", pb.EVENT_TYPE_CLICK, now, experiment="other", arm="b"),
            ]
        ),
        timeout=5,
    )
    stream = client.xrange(keys.EVENTS)
    got = [(f[b"user_id"], f[b"experiment"], f[b"arm"]) for _, f in stream]
    assert got == [
        (b"u1", b"feed-test", exp.arm_of("u1").name.encode()),
        (b"u2", b"", b""),
        (b"u3", b"other", b"b"),
    ]


def test_a_bad_arm_label_on_an_event_is_invalid_argument(stub: pb_grpc.DebunkServiceStub) -> None:
    bad = event("u1", "d1", pb.EVENT_TYPE_CLICK, arm="a b")
    with pytest.raises(grpc.RpcError) as err:
        stub.RecordEvents(pb.RecordEventsRequest(events=[bad]), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "arm may only contain" in err.value.details()


def test_pinned_answers_carry_the_viewers_arm_and_every_arm_gets_them(
    client: redis.Redis, stub: pb_grpc.DebunkServiceStub
) -> None:
    exp = start(client, "control:0.5,holdout:0.5:holdout")
    labelled(stub, "u1")
    for u in USERS[:8]:
        reply = stub.CommentTop(pb.CommentTopRequest(item_id="i1", user_id=u), timeout=5)
        assert (reply.experiment, reply.arm) == ("feed-test", exp.arm_of(u).name)
        assert reply.card.rumor_id == "r1"  # pinned cards are not targeted: holdout sees them
    anonymous = stub.CommentTop(pb.CommentTopRequest(item_id="i1"), timeout=5)
    assert (anonymous.experiment, anonymous.arm) == ("", "")
    search = stub.SearchTop(pb.SearchTopRequest(query="anything", user_id="u2"), timeout=5)
    assert (search.experiment, search.arm) == ("feed-test", exp.arm_of("u2").name)


def test_feed_answers_are_counted_per_arm_for_online_srm_checks(
    client: redis.Redis, settings: RedisSettings
) -> None:
    snapshot(client, "v1", ROWS)
    exp = start(client, "control:0.5,treatment:0.5")
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            wait_for_health(ch, SERVING)
            stub = pb_grpc.DebunkServiceStub(ch)
            labelled(stub, "u1")
            stub.RankFeedBatch(pb.RankFeedBatchRequest(user_ids=USERS, limit=1), timeout=5)
        registry = svc.server.metrics.registry
        counted = {
            arm: registry.get_sample_value(
                "debunk_feed_assignments_total", {"experiment": "feed-test", "arm": arm}
            )
            or 0
            for arm in ("control", "treatment")
        }
    finally:
        svc.stop()
    in_batch = {a: sum(exp.arm_of(u).name == a for u in USERS) for a in counted}
    assert (
        counted["control"] >= in_batch["control"] and counted["treatment"] >= in_batch["treatment"]
    )
    assert sum(counted.values()) - len(USERS) >= 1  # plus the polling RankFeed calls
