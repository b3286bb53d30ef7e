"""SearchTop and GroupWarnings behind the member filter (issue 21, item 2): a viewer or group
member outside it is not read, and every answer equals the store's (a server reading every
user), live-added members included; with Redis gone both servers mark the same answers
degraded. Real redis-server, real gRPC servers on loopback."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import redis
from google.protobuf.json_format import MessageToDict

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.records import Debunk, Rumor
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis
from feature_store.live_exposures import write_live_exposures
from feature_store.snapshots import SnapshotWriter
from service.membership import STALE_S
from tests.fixtures.servers import filtered_and_reading
from tests.fixtures.service import exposure_batch, live_exposure

CLAIMS = {
    "r1": "网传喝板蓝根能够预防新冠病毒感染，专家提醒大家每天喝三包",
    "r2": "紧急通知：明天起全市停水三天，请大家提前储水并转告亲友",
    "r3": "下周一起本市实行单双号限行，违反者罚款两千元并扣十二分",
}
RUMORS = [Rumor(r, c, "livelihood", 3, "false", "confirmed") for r, c in CLAIMS.items()]
DEBUNKS = [Debunk(f"d{r}", (r,), f"辟谣 {r}", f"https://x/{r}", "pub", "official") for r in CLAIMS]
STRANGERS = [f"s{i}" for i in range(40)]
IN_SLOT_OF_S = re.compile(r"\{s\d+\}")  # a key in one of STRANGERS' slots


def _snapshot(client: redis.Redis) -> None:
    """u1 saw r2 before r1, u2 saw r2; items i1..i3 carry r1..r3."""
    rows = [("u1", "r1", "click", 3), ("u1", "r2", "like", 1), ("u2", "r2", "share", 2)]
    w = SnapshotWriter(client, "v1")
    w.write_catalog(RUMORS, DEBUNKS)
    w.write_items({"i1": ["r1"], "i2": ["r2"], "i3": ["r3"]})
    w.write_exposures([exposure_batch(rows)])
    w.commit()


def _group(members: list[str], texts_only: bool = False) -> pb.GroupWarningsRequest:
    """Two messages matched by text (r2, r1) and, unless ``texts_only``, two tagged items."""
    messages = [pb.GroupMessage(message_id="m1", text="真的吗？" + CLAIMS["r2"]),
                pb.GroupMessage(message_id="m4", text=CLAIMS["r1"] + "，是真的")]  # fmt: skip
    if not texts_only:
        messages += [pb.GroupMessage(message_id="m2", item_id="i1"),
                     pb.GroupMessage(message_id="m3", item_id="i3")]  # fmt: skip
    return pb.GroupWarningsRequest(group_id="g1", member_ids=members, messages=messages)


def _search(user: str) -> pb.SearchTopRequest:
    return pb.SearchTopRequest(query=CLAIMS["r1"] + " " + CLAIMS["r2"], user_id=user, limit=5)


def _exposed(reply: pb.GroupWarningsResponse) -> dict[str, list[str]]:
    return {w.message_id: list(w.exposed_member_ids) for w in reply.warnings}


def _commands_during(client: redis.Redis, run: Callable[[], object]) -> list[str]:
    """Every command Redis ran while ``run()`` ran (MONITOR, up to a marker sent after it)."""
    marker = f"end-of-run-{time.time_ns()}"
    seen = []
    with client.monitor() as monitor:
        run()
        client.echo(marker)
        while marker not in (command := monitor.next_command()["command"]):
            seen.append(command)
    return seen


def test_search_and_group_answers_equal_the_stores_without_reading_non_members(
    client: redis.Redis, settings: RedisSettings
) -> None:
    client.flushdb()
    _snapshot(client)
    backfilled = pa.Table.from_batches([exposure_batch([("u-bf", "r3", "share", 4)])])
    write_live_exposures(client, backfilled, as_of_ms=int(time.time() * 1e3))
    with filtered_and_reading(settings) as (filtered, store):
        # a live exposure taken by the other server: a member here within the live target
        added = store.RecordExposures(
            pb.RecordExposuresRequest(events=[live_exposure("u-live", "i3")]), timeout=5
        )
        assert added.stored == 1
        members = ["u1", *STRANGERS[:20], "u-live", "u2", *STRANGERS[20:], "u-bf"]
        deadline = time.monotonic() + 2.0  # ~1 s target; room for a loaded 2-core machine
        everyone = _group(members)
        while "u-live" not in _exposed(filtered.GroupWarnings(everyone, timeout=5))["m3"]:
            assert time.monotonic() < deadline, "a live member was not seen within 2 s"
            time.sleep(0.01)
        for request in (_group(members), _group(members[::-1]), _group(STRANGERS)):
            got = filtered.GroupWarnings(request, timeout=5)
            assert MessageToDict(got) == MessageToDict(store.GroupWarnings(request, timeout=5))
        assert _exposed(filtered.GroupWarnings(_group(members), timeout=5)) == {
            "m1": ["u1", "u2"], "m4": ["u1"], "m2": ["u1"], "m3": ["u-live", "u-bf"],
        }  # fmt: skip
        for user in ("u1", "u2", "u-bf", "u-live", "s0", ""):
            got = filtered.SearchTop(_search(user), timeout=5)
            want = store.SearchTop(_search(user), timeout=5)
            assert MessageToDict(got) == MessageToDict(want)
            assert not got.degraded and len(got.cards) >= 2
        first = filtered.SearchTop(_search("u1"), timeout=5).cards
        assert [c.rumor_id for c in first][:2] == ["r2", "r1"]  # u1 saw r2 first

        def strangers_only(stub: pb_grpc.DebunkServiceStub) -> None:
            assert stub.GroupWarnings(_group(STRANGERS, texts_only=True), timeout=5).warnings
            assert stub.SearchTop(_search("s7"), timeout=5).cards

        named = [
            [
                c
                for c in _commands_during(client, lambda s=s: strangers_only(s))
                if IN_SLOT_OF_S.search(c)
            ]
            for s in (filtered, store)
        ]
        assert named[0] == [], "a non-member was read from the store"
        assert len(named[1]) >= len(STRANGERS) + 1  # the store server reads each of them


def test_non_members_are_degraded_on_search_and_groups_as_a_read_would_be(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    settings = RedisSettings(url=server.url, socket_timeout=0.2)
    _snapshot(redis.Redis.from_url(server.url))
    try:
        with filtered_and_reading(settings) as stubs:

            def answers(stub: pb_grpc.DebunkServiceStub) -> tuple[tuple[bool, int], ...]:
                search = stub.SearchTop(_search("s1"), timeout=5)
                group = stub.GroupWarnings(_group(STRANGERS, texts_only=True), timeout=5)
                return (search.degraded, len(search.cards)), (group.degraded, len(group.warnings))

            assert [answers(s) for s in stubs] == [((False, 2), (False, 2))] * 2
            server.stop()
            # at once (a lost connection) or once the announced users are STALE_S old
            deadline = time.monotonic() + STALE_S + 2.0
            while not all(degraded for degraded, _ in answers(stubs[0])):
                assert time.monotonic() < deadline, "a non-member's answer never said degraded"
            assert [answers(s) for s in stubs] == [((True, 2), (True, 2))] * 2
    finally:
        server.stop()
