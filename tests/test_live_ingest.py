"""Live exposures over real gRPC and a real redis-server: RecordExposures validation, rejects
and counters, retries applied once, the card served within a second of the acknowledgement, and
GroupWarnings and SearchTop's exposure read seeing live exposures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import grpc
import pytest
import redis
from google.protobuf.timestamp_pb2 import Timestamp

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.delivery import day_of
from feature_store import keys
from feature_store.connection import RedisSettings
from feature_store.live_ingest import decode_day
from feature_store.reader import SnapshotReader
from feature_store.transport.factory import open_transport
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING, snapshot


def exposure(user: str, item: str, ts: float | None = None, action: int = pb.ACTION_CLICK,
             surface: int = pb.SURFACE_FEED) -> pb.LiveExposure:  # fmt: skip
    e = pb.LiveExposure(user_id=user, item_id=item, surface=surface, action=action)
    if ts is not False:
        now = time.time() if ts is None else ts
        e.ts.CopyFrom(Timestamp(seconds=int(now), nanos=int(now % 1 * 1e9)))
    return e


@pytest.fixture
def stub(client: redis.Redis, settings: RedisSettings) -> Iterator[pb_grpc.DebunkServiceStub]:
    snapshot(client, "v1", [("u-old", "r2", "click", 3)])
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            yield pb_grpc.DebunkServiceStub(ch)
    finally:
        svc.stop()


def _live_keys(client: redis.Redis) -> list[bytes]:
    return sorted(client.scan_iter(match=b"dbk:li:*"))


def test_a_live_exposure_makes_the_user_eligible_within_a_second(
    stub: pb_grpc.DebunkServiceStub,
) -> None:
    before = stub.RankFeed(pb.RankFeedRequest(user_id="u-new", limit=5), timeout=5)
    assert list(before.cards) == []
    reply = stub.RecordExposures(
        pb.RecordExposuresRequest(events=[exposure("u-new", "i1")]), timeout=5
    )
    acked = time.monotonic()
    assert (reply.accepted, reply.stored, reply.rejected) == (1, 1, 0)
    deadline, calls = acked + 1.0, 0
    while True:
        calls += 1
        cards = stub.RankFeed(pb.RankFeedRequest(user_id="u-new", limit=5), timeout=5).cards
        if any(c.rumor_id == "r1" for c in cards):
            break
        assert time.monotonic() < deadline, "no card within 1 s of the acknowledgement"
    assert calls == 1, "the write is in Redis when the call answers"
    card = next(c for c in cards if c.rumor_id == "r1")
    assert card.reason.exposures == 1
    batch = stub.RankFeedBatch(pb.RankFeedBatchRequest(user_ids=["u-new", "u-old"], limit=5))
    assert [c.rumor_id for c in batch.feeds[0].cards] == ["r1"]


def test_live_exposures_add_to_the_snapshot_state(stub, client: redis.Redis) -> None:
    """u-old saw r2 twice in the snapshot; two live rows on i2 (r2 and r1) add to it."""
    events = [exposure("u-old", "i2"), exposure("u-old", "i2", action=pb.ACTION_SHARE)]
    reply = stub.RecordExposures(pb.RecordExposuresRequest(events=events), timeout=5)
    assert reply.stored == 2
    cards = stub.RankFeed(pb.RankFeedRequest(user_id="u-old", limit=5), timeout=5).cards
    by_rumor = {c.rumor_id: c for c in cards}
    assert by_rumor["r2"].reason.exposures == 4  # 2 in the snapshot + 2 live
    assert by_rumor["r2"].reason.action == pb.ACTION_SHARE
    assert by_rumor["r1"].reason.exposures == 2


def test_bad_batches_are_refused_whole_and_bad_rows_go_to_rejects(
    stub: pb_grpc.DebunkServiceStub, client: redis.Redis
) -> None:
    too_many = pb.RecordExposuresRequest(events=[exposure("u1", "i1")] * 10_001)
    with pytest.raises(grpc.RpcError) as err:
        stub.RecordExposures(too_many, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad_id = pb.RecordExposuresRequest(events=[exposure("u1", "i1")], batch_id="a b")
    with pytest.raises(grpc.RpcError) as err:
        stub.RecordExposures(bad_id, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batch_id" in err.value.details()
    assert _live_keys(client) == [] and not client.exists(keys.INGEST_COUNTS)

    rows = [
        exposure("u1", "i1"),
        exposure("", "i1"),
        exposure("u1", "i1", action=pb.ACTION_UNSPECIFIED),
        exposure("u1", "i1", surface=pb.SURFACE_UNSPECIFIED),
        exposure("u{1}", "i1"),
        exposure("u1", "i1", ts=False),
        exposure("u1", "i-untagged"),
    ]
    reply = stub.RecordExposures(pb.RecordExposuresRequest(events=rows), timeout=5)
    assert (reply.accepted, reply.stored, reply.untagged, reply.rejected) == (2, 1, 1, 5)
    reasons = [f[b"reason"].decode() for _, f in client.xrange(keys.INGEST_REJECTS)]
    assert reasons == ["null_or_empty_user_id", "unknown_action", "unknown_surface",
                       "invalid_user_id", "null_ts"]  # fmt: skip
    counts = {k.decode(): int(v) for k, v in client.hgetall(keys.INGEST_COUNTS).items()}
    assert counts["accepted"] == 2 and counts["stored"] == 1 and counts["untagged"] == 1
    assert (
        counts["rejected:unknown_action"] == 1
        and sum(v for k, v in counts.items() if k.startswith("rejected:")) == 5
    )
    assert _live_keys(client) == [keys.live_day("u1", day_of(time.time()))]
    ttl = client.ttl(keys.live_day("u1", day_of(time.time())))
    assert 29 * 86_400 < ttl <= 30 * 86_400


def test_a_retried_batch_id_is_applied_once(stub, client: redis.Redis) -> None:
    request = pb.RecordExposuresRequest(
        events=[exposure("u7", "i2"), exposure("u7", "i1")], batch_id="shipper-1:p0:42"
    )
    first = stub.RecordExposures(request, timeout=5)
    again = stub.RecordExposures(request, timeout=5)
    assert first.stored == 2 and not first.duplicate
    assert again.duplicate and again.stored == 0
    day = decode_day(client.hgetall(keys.live_day("u7", day_of(time.time()))))
    assert day["r1"].exposures == 2 and day["r2"].exposures == 1  # i1 and i2 both carry r1


def test_group_warnings_and_search_reads_see_live_exposures(
    stub: pb_grpc.DebunkServiceStub, redis_url: str
) -> None:
    group = pb.GroupWarningsRequest(
        group_id="g1",
        messages=[pb.GroupMessage(message_id="m1", item_id="i1")],
        member_ids=["u5", "u6"],
    )
    assert list(stub.GroupWarnings(group, timeout=5).warnings[0].exposed_member_ids) == []
    stub.RecordExposures(pb.RecordExposuresRequest(events=[exposure("u5", "i1")]), timeout=5)
    warning = stub.GroupWarnings(group, timeout=5).warnings[0]
    assert list(warning.exposed_member_ids) == ["u5"]

    async def search_read() -> list:
        transport = open_transport(RedisSettings(url=redis_url))
        try:  # the read SearchTop's "exposed first" ranks with
            return await SnapshotReader(transport).user_exposures("v1", "u5")
        finally:
            await transport.aclose()

    states = asyncio.run(search_read())
    assert [(s.rumor_id, s.exposures) for s in states] == [("r1", 1)]
