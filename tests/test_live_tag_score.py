"""Live exposures carry the score of the tag they came through, as the nightly join weighs
logged ones (decision 0034): a matcher's tag from the snapshot's item-scores hash or from the
live layer, 1.0 for hand tags. Real redis-server, a real `debunk ingest` consumer in process
and a real gRPC server on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.delivery import day_of
from domain.exposure_days import bucket_field, hour_of
from domain.live import TagChange
from feature_store import keys
from feature_store.codecs import TAG_SCORE_STEPS
from feature_store.connection import RedisSettings
from feature_store.exposure_consumer import ExposureConsumer
from feature_store.live_catalog import encode
from feature_store.live_ingest import TaggedItems, decode_day, load_tagged
from feature_store.snapshots import SnapshotWriter
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import DEBUNKS, RUMORS, SERVING


def _q(score: float) -> float:
    """A score as the stored byte gives it back."""
    return round(score * TAG_SCORE_STEPS) / TAG_SCORE_STEPS


def _snapshot(client: redis.Redis, meta: dict[str, str] | None = None) -> None:
    """No exposures; i1 matched to r1 at 0.1, i2 hand-tagged r2, i4 matched to r1 and r2."""
    w = SnapshotWriter(client, "v1")
    w.write_catalog(RUMORS, DEBUNKS)
    w.write_items(
        {"i1": ["r1"], "i2": ["r2"], "i4": ["r1", "r2"]},
        {"i1": {"r1": 0.1}, "i4": {"r1": 0.7, "r2": 0.9}, "i2": {"r9": 0.5}},
    )
    w.commit(meta)


def _consume(client: redis.Redis, rows: list[dict[str, str]]) -> None:
    for row in rows:
        client.xadd(keys.EXPOSURE_STREAM, row)
    ExposureConsumer(client, consumer="t", block_ms=50).run(exit_when_idle=True)


def _row(user: str, item: str, action: str = "click", ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) - 5 if ts is None else ts
    return {"user_id": user, "item_id": item, "ts": str(ts), "surface": "feed", "action": action}


def test_the_tagged_set_carries_matcher_scores_and_the_live_layer_s(client: redis.Redis) -> None:
    _snapshot(client)
    tagged = load_tagged(client, TaggedItems())
    assert tagged.score("i1", "r1") == pytest.approx(0.1)
    assert tagged.score("i2", "r2") == 1.0 and ("i2", "r9") not in tagged.scores  # not its tag
    client.hset(keys.LIVE_TAGS, mapping={
        "i1": encode(TagChange().tag("r1", "manual", 0.3)),  # a hand tag over the matcher's
        "i5": encode(TagChange().tag("r2", "matched", 0.4)),
        "i4": encode(TagChange().untag("r2")),
    })  # fmt: skip
    client.incr(keys.LIVE_SEQ)
    tagged = load_tagged(client, tagged)
    assert tagged.score("i1", "r1") == 1.0
    assert tagged.score("i5", "r2") == pytest.approx(0.4)
    assert tagged.rumors("i4") == ("r1",) and ("i4", "r2") not in tagged.scores


def test_a_live_exposure_through_a_matched_item_keeps_its_best_score(client: redis.Redis) -> None:
    _snapshot(client)
    now = int(time.time()) - 5
    _consume(client, [_row("u1", "i1", ts=now), _row("u1", "i4", ts=now)])
    day = decode_day(client.hgetall(keys.live_day("u1", day_of(now))))
    assert day["r1"].exposures == 2 and day["r1"].tag_score == _q(0.7)  # best of 0.1 and 0.7
    assert day["r2"].tag_score == _q(0.9)
    _consume(client, [_row("u2", "i1", ts=now)])
    _consume(client, [_row("u2", "i2", ts=now), _row("u2", "i1", "share", ts=now)])
    day = decode_day(client.hgetall(keys.live_day("u2", day_of(now))))
    assert day["r1"].exposures == 2 and day["r1"].tag_score == _q(0.1)  # merged in the script
    assert day["r2"].tag_score == 1.0
    field = bucket_field(hour_of(now), "r2")
    assert len(client.hget(keys.live_day("u2", day_of(now)), field)) == 15  # a hand tag: no byte


@pytest.mark.parametrize("bad", [False, True])
def test_a_scored_live_row_lands_in_its_hour_and_one_before_the_watermark_is_not_stored(
    client: redis.Redis, bad: bool
) -> None:
    """Through the consumer (a clean batch: the column screen; one bad row in it: the row
    screen), a row through i1 (matched at 0.1) goes to its hour's ``HH|r1`` field as a 16-byte
    value, and a row a second before the snapshot's watermark is counted covered, not stored."""
    now = int(time.time())
    mark = now - now % 3_600 - 3_600  # the previous hour's start
    _snapshot(client, {"live_after": str(mark)})
    rows = [_row("u1", "i1", ts=mark - 1), _row("u1", "i1", "share", ts=mark + 5)]
    if bad:
        rows.append(_row("u2", "i1", "stare"))
    _consume(client, rows)
    raw = client.hgetall(keys.live_day("u1", day_of(mark)))
    hour = hour_of(mark)
    assert list(raw) == [bucket_field(hour, "r1").encode()]
    value = raw[bucket_field(hour, "r1").encode()]
    assert len(value) == 16 and value[15] == round(0.1 * TAG_SCORE_STEPS)
    day = decode_day(raw, from_hour=hour)
    assert day["r1"].exposures == 1 and day["r1"].first_ts == mark + 5
    assert day["r1"].tag_score == _q(0.1)
    assert decode_day(raw, from_hour=hour + 1) == {}
    counts = client.hgetall(keys.INGEST_COUNTS)
    assert counts[b"covered"] == b"1" and counts[b"stored"] == b"1"
    assert counts.get(b"rejected:unknown_action") == (b"1" if bad else None)


@pytest.fixture
def stub(client: redis.Redis, settings: RedisSettings) -> Iterator[pb_grpc.DebunkServiceStub]:
    _snapshot(client)
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            yield pb_grpc.DebunkServiceStub(ch)
    finally:
        svc.stop()


def test_a_live_exposure_ranks_with_its_tag_score(
    stub: pb_grpc.DebunkServiceStub, client: redis.Redis
) -> None:
    """A share of r1 through an item matched at 0.1 ranks below a click of r2 through a hand
    tag (0.1 x share < 1.0 x click), on the stream and through RecordExposures."""
    _consume(client, [_row("u-s", "i1", "share"), _row("u-s", "i2", "click")])
    cards = stub.RankFeed(pb.RankFeedRequest(user_id="u-s", limit=5), timeout=5).cards
    assert [c.rumor_id for c in cards] == ["r2", "r1"]
    assert cards[1].reason.action == pb.ACTION_SHARE
    now = int(time.time()) - 5
    events = [
        pb.LiveExposure(user_id="u-r", item_id=i, surface=pb.SURFACE_FEED, action=a)
        for i, a in (("i1", pb.ACTION_SHARE), ("i2", pb.ACTION_CLICK))
    ]
    for e in events:
        e.ts.seconds = now
    stub.RecordExposures(pb.RecordExposuresRequest(events=events), timeout=5)
    cards = stub.RankFeed(pb.RankFeedRequest(user_id="u-r", limit=5), timeout=5).cards
    assert [c.rumor_id for c in cards] == ["r2", "r1"]
