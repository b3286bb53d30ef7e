"""GroupWarnings over real gRPC names the members exposed to a message's claim (its rumor or any
sibling of its claim cluster) the same way whether it reads each member's exposures for just the
claim's rumors (HMGET, few of them) or for all (HKEYS, a claim cluster of thousands)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.records import Debunk, Rumor
from feature_store.connection import RedisSettings
from feature_store.snapshots import SnapshotWriter
from service import servicer
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING
from tests.fixtures.snapshots import state

CITIES = ["北京", "上海", "广州", "深圳", "成都", "杭州", "武汉", "西安", "南京", "重庆"]
# A claim cluster of 40 rumors (more than servicer.FEW_CLAIM_RUMORS), a singleton, and a
# withdrawn rumor; the cluster field is written as the nightly job would.
BIG = [f"c{i:03d}" for i in range(40)]
RUMORS = [
    *(
        Rumor(
            rid,
            f"{CITIES[i % 10]}第{i}号水库出现裂缝随时可能溃坝，下游的人快撤离",
            "disaster",
            4,
            "false",
            "confirmed",
            cluster="c000",
        )  # fmt: skip
        for i, rid in enumerate(BIG)
    ),
    Rumor("s1", "喝板蓝根可以预防流感，医生都在偷偷喝", "epidemic", 3, "false", "confirmed"),
    Rumor("w1", "手机充电时接电话会爆炸", "other", 2, "false", "withdrawn"),
]
DEBUNKS = [Debunk(f"d-{r.rumor_id}", (r.rumor_id,), "辟谣", "https://x/d", "pub", "official")
           for r in RUMORS]  # fmt: skip
EXPOSURES = [("u1", "c039", 1), ("u2", "s1", 2), ("u4", "c000", 1), ("u4", "s1", 1),
             ("u5", "w1", 3), ("u6", "c017", 1), ("u6", "w1", 1)]  # fmt: skip
MEMBERS = ["u6", "u1", "u2", "u3", "u4", "u5", "nobody"]


@pytest.fixture
def stub(client: redis.Redis, settings: RedisSettings) -> Iterator[pb_grpc.DebunkServiceStub]:
    w = SnapshotWriter(client, "v1")
    w.write_catalog(RUMORS, DEBUNKS)
    w.write_exposures([state(*EXPOSURES)])
    w.commit()
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            yield pb_grpc.DebunkServiceStub(ch)
    finally:
        svc.stop()


def warnings(stub: pb_grpc.DebunkServiceStub, *texts: str) -> dict[str, tuple[str, list[str]]]:
    """message id -> (the pinned rumor, the exposed members) of one GroupWarnings call."""
    messages = [pb.GroupMessage(message_id=f"m{i}", text=t) for i, t in enumerate(texts)]
    reply = stub.GroupWarnings(
        pb.GroupWarningsRequest(group_id="g1", messages=messages, member_ids=MEMBERS), timeout=5
    )
    assert not reply.degraded
    return {w.message_id: (w.card.rumor_id, list(w.exposed_member_ids)) for w in reply.warnings}


@pytest.mark.parametrize("few", [0, 1_000_000], ids=["all-exposures", "claim-rumors-only"])
def test_members_exposed_to_a_sibling_are_named_whichever_way_exposures_are_read(
    stub: pb_grpc.DebunkServiceStub, monkeypatch: pytest.MonkeyPatch, few: int
) -> None:
    monkeypatch.setattr(servicer, "FEW_CLAIM_RUMORS", few)
    got = warnings(stub, RUMORS[5].claim, RUMORS[40].claim, "晚上一起吃饭吗？")
    assert set(got) == {"m0", "m1"}
    rumor, exposed = got["m0"]
    assert rumor in BIG
    assert exposed == ["u6", "u1", "u4"]  # in member order; u5 saw only a withdrawn rumor
    assert got["m1"] == ("s1", ["u2", "u4"])
    assert warnings(stub, RUMORS[40].claim) == {"m0": ("s1", ["u2", "u4"])}  # alone: few
