"""RankFeedBatch, CommentTop, RecordEvents and the event stream over a real gRPC channel."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pyarrow.dataset as ds
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.delivery import day_of
from feature_store import keys
from feature_store.connection import RedisSettings
from offline.nightly.export_events import export_events
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING, event, snapshot

ROWS = [("u1", "r1", "click", 2), ("u1", "r2", "share", 1), ("u2", "r2", "impression", 4)]


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


def feed(stub: pb_grpc.DebunkServiceStub, user: str) -> list[str]:
    reply = stub.RankFeed(pb.RankFeedRequest(user_id=user, limit=10), timeout=5)
    return [c.debunk_id for c in reply.cards]


def test_batch_answers_every_user_in_request_order(stub: pb_grpc.DebunkServiceStub) -> None:
    reply = stub.RankFeedBatch(
        pb.RankFeedBatchRequest(user_ids=["u2", "nobody", "u1"], limit=10), timeout=5
    )
    assert [f.user_id for f in reply.feeds] == ["u2", "nobody", "u1"]
    assert [[c.rumor_id for c in f.cards] for f in reply.feeds] == [["r2"], [], ["r2", "r1"]]
    assert reply.snapshot_version == "v1" and not reply.degraded


def test_batch_matches_single_calls(stub: pb_grpc.DebunkServiceStub) -> None:
    users = [f"u{i}" for i in range(1, 4)] * 300
    reply = stub.RankFeedBatch(pb.RankFeedBatchRequest(user_ids=users, limit=5), timeout=10)
    singles = {u: feed(stub, u) for u in set(users)}
    assert [[c.debunk_id for c in f.cards] for f in reply.feeds] == [singles[u] for u in users]


@pytest.mark.parametrize(
    ("user_ids", "limit", "message"),
    [
        ([], 5, "user_ids must hold 1 to 1000 ids, got 0"),
        (["u1"] * 1001, 5, "user_ids must hold 1 to 1000 ids, got 1001"),
        (["u1", "bad id"], 5, "user_ids[1] may only contain"),
        (["u1"], 0, "limit must be between 1 and 50"),
    ],
)
def test_bad_batches_are_invalid_argument(
    stub: pb_grpc.DebunkServiceStub, user_ids: list[str], limit: int, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.RankFeedBatch(pb.RankFeedBatchRequest(user_ids=user_ids, limit=limit), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


def test_comment_top_pins_the_most_authoritative_debunk_of_the_item(
    stub: pb_grpc.DebunkServiceStub,
) -> None:
    one = stub.CommentTop(pb.CommentTopRequest(item_id="i1"), timeout=5)
    assert one.HasField("card") and one.card.debunk_id == "d1" and one.card.rumor_id == "r1"
    two = stub.CommentTop(pb.CommentTopRequest(item_id="i2"), timeout=5)
    assert two.card.rumor_id == "r1"  # severity 4 beats r2's 2
    for untagged in ("i3", "i404"):  # i3 carries a withdrawn rumor
        assert not stub.CommentTop(pb.CommentTopRequest(item_id=untagged), timeout=5).HasField(
            "card"
        )
    with pytest.raises(grpc.RpcError) as err:
        stub.CommentTop(pb.CommentTopRequest(item_id=""), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_seen_debunk_is_replaced_and_a_dismissed_rumor_is_dropped(
    stub: pb_grpc.DebunkServiceStub,
) -> None:
    assert feed(stub, "u1") == ["d2", "d1"]
    reply = stub.RecordEvents(
        pb.RecordEventsRequest(events=[event("u1", "d1", pb.EVENT_TYPE_IMPRESSION)]), timeout=5
    )
    assert reply.accepted == 1
    assert feed(stub, "u1") == ["d2", "d1m"]  # d1 seen: the next debunk of r1
    stub.RecordEvents(
        pb.RecordEventsRequest(events=[event("u1", "d2", pb.EVENT_TYPE_DISMISS)]), timeout=5
    )
    assert feed(stub, "u1") == ["d1m"]


def test_the_daily_cap_counts_served_cards(
    stub: pb_grpc.DebunkServiceStub, client: redis.Redis
) -> None:
    served = [event("u1", f"dx{i}", pb.EVENT_TYPE_SERVED) for i in range(5)]
    stub.RecordEvents(pb.RecordEventsRequest(events=served), timeout=5)
    assert client.hget(keys.daily_caps("u1", day_of(time.time())), "feed") == b"5"
    assert feed(stub, "u1") == []  # the default cap is 5 a day


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([], "events must hold 1 to 1000"),
        (
            [pb.DebunkEvent(user_id="u1", debunk_id="d1", event=pb.EVENT_TYPE_CLICK)],
            "events[0].surface must be set",
        ),
        (
            [pb.DebunkEvent(user_id="u1", debunk_id="d1", surface=pb.SURFACE_FEED)],
            "events[0].event must be set",
        ),
        ([event("u{1}", "d1", pb.EVENT_TYPE_CLICK)], "events[0]: user_id may only contain"),
        (
            [event("u1", "d1", pb.EVENT_TYPE_CLICK, ts=int(time.time()) + 86400)],
            "events[0].ts must not be in the future",
        ),
    ],
)
def test_bad_events_are_refused_whole(
    stub: pb_grpc.DebunkServiceStub, client: redis.Redis, events: list, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.RecordEvents(pb.RecordEventsRequest(events=events), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()
    assert client.xlen(keys.EVENTS) == 0


def test_events_reach_parquet_once_across_drains(
    stub: pb_grpc.DebunkServiceStub, client: redis.Redis, tmp_path: Path
) -> None:
    stub.RecordEvents(
        pb.RecordEventsRequest(
            events=[
                event("u1", "d1", pb.EVENT_TYPE_IMPRESSION, experiment="e1", arm="treatment"),
                event("u2", "d2", pb.EVENT_TYPE_CLICK),
            ]
        ),
        timeout=5,
    )
    first = export_events(client, tmp_path, chunk=1)
    assert first["events"] == 2 and client.xlen(keys.EVENTS) == 0
    stub.RecordEvents(
        pb.RecordEventsRequest(events=[event("u1", "d2", pb.EVENT_TYPE_SHARE)]), timeout=5
    )
    assert export_events(client, tmp_path)["events"] == 1
    assert export_events(client, tmp_path)["events"] == 0
    table = ds.dataset(tmp_path, format="parquet", partitioning="hive").to_table()
    rows = sorted(
        (r["user_id"], r["debunk_id"], r["event"], r["rumor_id"], r["arm"])
        for r in table.to_pylist()
    )
    assert rows == [
        ("u1", "d1", "impression", "r1", "treatment"),
        ("u1", "d2", "share", "r2", ""),
        ("u2", "d2", "click", "r2", ""),
    ]


def test_a_drain_killed_before_moving_the_cursor_writes_no_duplicates(
    stub: pb_grpc.DebunkServiceStub,
    client: redis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from feature_store import events as stream

    stub.RecordEvents(
        pb.RecordEventsRequest(events=[event("u1", "d1", pb.EVENT_TYPE_CLICK)]), timeout=5
    )

    def killed(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(stream, "advance", killed)
    with pytest.raises(KeyboardInterrupt):
        export_events(client, tmp_path)
    monkeypatch.undo()
    stub.RecordEvents(
        pb.RecordEventsRequest(events=[event("u2", "d1", pb.EVENT_TYPE_CLICK)]), timeout=5
    )
    assert export_events(client, tmp_path)["events"] == 2
    users = ds.dataset(tmp_path, format="parquet").to_table()["user_id"].to_pylist()
    assert sorted(users) == ["u1", "u2"]
