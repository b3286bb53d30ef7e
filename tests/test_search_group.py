"""SearchTop and GroupWarnings end to end: the snapshot's rumor library matched online, over a
real gRPC channel, on a synthetic world after a real nightly run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import grpc
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from feature_store.connection import RedisSettings
from offline.nightly.job import run_nightly
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING


@dataclass
class World:
    stub: pb_grpc.DebunkServiceStub
    rumors: dict[str, dict]
    state: Path
    tags: Path


@pytest.fixture
def world(
    small_world: Path, tmp_path: Path, client: redis.Redis, settings: RedisSettings
) -> Iterator[World]:
    run_nightly(small_world, date(2026, 10, 5), tmp_path / "state", settings)
    rumors = {}
    for line in (small_world / "rumors.jsonl").read_text().splitlines():
        r = json.loads(line)
        rumors[r["rumor_id"]] = r
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            yield World(
                pb_grpc.DebunkServiceStub(ch),
                rumors,
                tmp_path / "state" / "current" / "exposures.parquet",
                small_world / "tagged_items.parquet",
            )
    finally:
        svc.stop()


def confirmed(w: World) -> list[dict]:
    return [r for r in w.rumors.values() if r["status"] == "confirmed"]


def search(w: World, query: str, user: str = "") -> list[str]:
    reply = w.stub.SearchTop(pb.SearchTopRequest(query=query, user_id=user), timeout=5)
    assert not reply.degraded
    return [c.rumor_id for c in reply.cards]


def test_a_query_about_a_rumor_pins_its_debunk(world: World) -> None:
    r = confirmed(world)[0]
    assert search(world, r["claim"])[0] == r["rumor_id"]
    assert search(world, " ".join(r["keywords"]))[0] == r["rumor_id"]  # Chinese, no spaces needed
    reply = world.stub.SearchTop(pb.SearchTopRequest(query=r["claim"]), timeout=5)
    assert reply.cards[0].authority and reply.cards[0].url and reply.cards[0].score > 0.3


def test_unrelated_queries_get_nothing(world: World) -> None:
    for q in ("今天天气不错，去公园散步", "iPhone 17 发布会", "周末去哪里吃火锅"):
        assert search(world, q) == []


def test_withdrawn_rumors_are_never_pinned(world: World) -> None:
    withdrawn = [r for r in world.rumors.values() if r["status"] == "withdrawn"]
    assert withdrawn
    for r in withdrawn:
        assert r["rumor_id"] not in search(world, r["claim"])


def test_an_exposed_searcher_sees_the_rumor_they_saw_first_on_top(world: World) -> None:
    state = pq.read_table(world.state)
    counts = state.group_by("user_id").aggregate([("rumor_id", "count")])
    user = counts.filter(pc.greater(counts["rumor_id_count"], 1))["user_id"][0].as_py()
    mine = state.filter(pc.equal(state["user_id"], user)).sort_by("first_ts").to_pylist()
    first, later = mine[0]["rumor_id"], mine[1]["rumor_id"]
    query = world.rumors[later]["claim"] + " " + world.rumors[first]["claim"]
    assert search(world, query, user)[0] == first
    assert set(search(world, query)) >= {first, later}


@pytest.mark.parametrize(
    ("query", "message"),
    [("   ", "query must not be empty"), ("谣" * 257, "query is longer than 256")],
)
def test_bad_queries_are_invalid_argument(world: World, query: str, message: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        world.stub.SearchTop(pb.SearchTopRequest(query=query), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


def test_group_warnings_by_item_and_by_text_with_exposed_members(world: World) -> None:
    state = pq.read_table(world.state)
    tags = pq.read_table(world.tags).to_pylist()
    by_item = next(t for t in tags if world.rumors[t["rumor_id"]]["status"] == "confirmed")
    rumor_of_item = by_item["rumor_id"]
    exposed = sorted(
        set(state.filter(pc.equal(state["rumor_id"], rumor_of_item))["user_id"].to_pylist())
    )[:3]
    text_rumor = next(r for r in confirmed(world) if r["rumor_id"] != rumor_of_item)
    noisy = f"//@小明: 真的假的？{text_rumor['variants'][0]} [泪] http://t.cn/A6x8Yz"
    members = [*exposed, "u99999999"]
    reply = world.stub.GroupWarnings(
        pb.GroupWarningsRequest(
            group_id="g1",
            member_ids=members,
            messages=[
                pb.GroupMessage(message_id="m1", item_id=by_item["item_id"], sender_id="u1"),
                pb.GroupMessage(message_id="m2", text=noisy, sender_id="u2"),
                pb.GroupMessage(message_id="m3", text="晚上一起吃饭吗？", sender_id="u3"),
            ],
        ),
        timeout=5,
    )
    got = {w.message_id: w for w in reply.warnings}
    assert set(got) == {"m1", "m2"} and not reply.degraded
    assert got["m1"].matched_by == "item" and got["m1"].card.rumor_id == rumor_of_item
    assert sorted(got["m1"].exposed_member_ids) == exposed
    assert got["m2"].matched_by == "text" and got["m2"].card.rumor_id == text_rumor["rumor_id"]
    assert got["m2"].match_score >= 0.35


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "messages must hold 1 to 100"),
        ([pb.GroupMessage(message_id="m1")], "messages[0] needs text or item_id"),
        (
            [
                pb.GroupMessage(message_id="m1", text="a"),
                pb.GroupMessage(message_id="m1", text="b"),
            ],
            "messages[1].message_id repeats",
        ),
        ([pb.GroupMessage(message_id="m 1", text="a")], "messages[0].message_id may only contain"),
        ([pb.GroupMessage(message_id="m1", text="谣" * 4001)], "longer than 4000"),
    ],
)
def test_bad_group_calls_are_invalid_argument(world: World, messages: list, message: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        world.stub.GroupWarnings(
            pb.GroupWarningsRequest(group_id="g1", messages=messages), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()
