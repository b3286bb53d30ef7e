"""SearchTop and GroupWarnings when Redis goes away after the snapshot loaded: the matcher and
the cached catalog still pin debunks, what needs Redis (tagged items, exposed members, the
searcher's history) is left out, and the answer says it is degraded; store calls keep the
caller's deadline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.records import Debunk, Rumor
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis
from feature_store.snapshots import SnapshotWriter
from service.rpc import within_deadline
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING, exposure_batch

CLAIMS = {
    "r1": "喝板蓝根可以预防新冠病毒，医生都在偷偷喝，赶紧转发给家里人",
    "r2": "明天起全市停水三天，自来水公司已经发了通知，大家赶紧囤水",
    "r3": "北京将于下周一起实行单双号限行，违者一律罚款两千元",
}
RUMORS = [Rumor(r, c, "livelihood", 3, "false", "confirmed") for r, c in CLAIMS.items()]
DEBUNKS = [Debunk(f"d{r}", (r,), f"辟谣 {r}", f"https://x/{r}", "pub", "official") for r in CLAIMS]


def write_snapshot(client: redis.Redis) -> None:
    rows = [("u1", "r1", 3), ("u1", "r2", 1), ("u2", "r2", 2)]  # u1 saw r2 first
    batch = exposure_batch([(u, r, "impression", day) for u, r, day in rows], exposures=1)
    w = SnapshotWriter(client, "v1")
    w.write_catalog(RUMORS, DEBUNKS)
    w.write_items({"i3": ["r3"]})
    w.write_exposures([batch])
    w.commit()


def group(stub: pb_grpc.DebunkServiceStub) -> pb.GroupWarningsResponse:
    return stub.GroupWarnings(
        pb.GroupWarningsRequest(
            group_id="g1",
            member_ids=["u1", "u2", "u3"],
            messages=[
                pb.GroupMessage(message_id="m1", text="真的吗？" + CLAIMS["r2"]),
                pb.GroupMessage(message_id="m2", item_id="i3"),
            ],
        ),
        timeout=2,
    )


def search(stub: pb_grpc.DebunkServiceStub, user: str = "") -> pb.SearchTopResponse:
    query = CLAIMS["r1"] + " " + CLAIMS["r2"]
    return stub.SearchTop(pb.SearchTopRequest(query=query, user_id=user), timeout=2)


def test_pinned_cards_survive_redis_going_away_and_say_they_are_degraded(
    tmp_path: Path,
) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    svc = ServiceThread(RedisSettings(url=server.url, socket_timeout=0.2)).start()
    try:
        write_snapshot(redis.Redis.from_url(server.url))
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            stub = pb_grpc.DebunkServiceStub(ch)
            up = group(stub)
            assert not up.degraded
            assert {(w.message_id, w.matched_by, w.card.rumor_id) for w in up.warnings} == {
                ("m1", "text", "r2"),
                ("m2", "item", "r3"),
            }
            assert {w.message_id: sorted(w.exposed_member_ids) for w in up.warnings} == {
                "m1": ["u1", "u2"],
                "m2": [],
            }
            personal = search(stub, "u1")
            assert not personal.degraded
            assert [c.rumor_id for c in personal.cards][:2] == ["r2", "r1"]  # seen first, first

            server.stop()
            down = group(stub)
            assert down.degraded and down.snapshot_version == "v1"
            assert [(w.message_id, w.card.rumor_id) for w in down.warnings] == [("m1", "r2")]
            assert list(down.warnings[0].exposed_member_ids) == []
            unpersonal = search(stub, "u1")
            assert unpersonal.degraded
            assert {c.rumor_id for c in unpersonal.cards} >= {"r1", "r2"}
            anonymous = search(stub)
            assert not anonymous.degraded and len(anonymous.cards) >= 2
    finally:
        svc.stop()
        server.stop()


class Context:
    """The part of a grpc.aio context the store calls read."""

    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining

    def time_remaining(self) -> float | None:
        return self.remaining


def test_a_store_call_whose_deadline_has_passed_times_out_without_starting() -> None:
    started = []

    async def read() -> str:
        started.append(True)
        return "x"

    async def go() -> None:
        call = read()
        with pytest.raises(TimeoutError):
            await within_deadline(Context(0.004), call)  # within the 5 ms margin
        assert call.cr_frame is None  # closed, never run

    asyncio.run(go())
    assert not started


def test_a_slow_store_call_times_out_at_the_callers_deadline_and_a_quick_one_answers() -> None:
    async def slow() -> str:
        await asyncio.sleep(5)
        return "late"

    async def quick() -> str:
        return "now"

    async def go() -> float:
        assert await within_deadline(Context(None), quick()) == "now"
        t = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await within_deadline(Context(0.055), slow())
        return asyncio.get_running_loop().time() - t

    assert 0.04 <= asyncio.run(go()) < 1.0
