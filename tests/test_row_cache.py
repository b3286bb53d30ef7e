"""feature_store.row_cache: users' snapshot rows kept in process. Its bounds, and over real gRPC
and a real redis-server that a server keeping them answers exactly as one that reads every row
(row_cache_users=0): after served, seen and dismissed cards (caps), after live exposures, after
a flip to a new version (its rows are read, not the old ones), and never kept while the store
is distrusted."""

from __future__ import annotations

import asyncio
import functools
import gc
import time
import types
from collections.abc import Iterator

import grpc
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.models import UserModel
from domain.records import ExposureState
from feature_store.connection import RedisSettings
from feature_store.reader import SnapshotReader
from feature_store.row_cache import SnapshotRows
from feature_store.transport.factory import open_transport
from service import rpc
from tests.fixtures.servers import ServiceThread, wait_for_health, wait_members_read
from tests.fixtures.service import SERVING, event, live_exposure
from tests.fixtures.snapshots import write_served

NOW = time.time()
V1 = [("u1", "r1", "click", 2), ("u1", "r2", "share", 3), ("u2", "r2", "impression", 4)]
V2 = [("u1", "r2", "impression", 5), ("u2", "r1", "share", 6), ("u2", "r2", "click", 6)]
USERS = ["u1", "u2", "u3", "nobody"]


def test_rows_are_bounded_per_process_and_per_version() -> None:
    rows = SnapshotRows(users=3, versions=2)
    for i in range(3):
        rows.put("v1", f"u{i}", ([], UserModel()))
    assert len(rows) == 3 and rows.get("v1", "u0") is not None
    rows.put("v1", "u3", ([], UserModel()))
    assert len(rows) == 3 and rows.get("v1", "u0") is None  # the oldest went first
    rows.put("v2", "u0", ([], UserModel()))
    rows.put("v3", "u0", ([], UserModel()))
    assert rows.get("v1", "u3") is None and rows.get("v2", "u0") is not None  # two versions
    assert len(rows) == 2
    state = ExposureState("r1", 2, 10, 20, 1, 3, (0.5, float("nan")), 0.9)
    model = UserModel(None, (("r1", 0.5),), ((1.0,),))
    rows.put("v2", "u9", ([state], model))
    got_states, got_model = rows.get("v2", "u9")  # type: ignore[misc]
    assert type(got_states[0]) is ExposureState and got_states[0][:6] == state[:6]
    assert got_states[0].tag_score == 0.9 and got_model == model and type(got_model) is UserModel
    for _ in range(3):  # a pass untracks one level: the innermost tuples first
        gc.collect()
    kept = rows._by_version["v2"]["u9"]
    assert not any(map(gc.is_tracked, (kept, *kept[0], kept[1])))  # none adds to a full pass
    plain, _ = rows.get("v2", "u9", plain=True)  # type: ignore[misc]
    assert type(plain[0]) is tuple and plain[0] == state  # the kept tuple itself, by position
    assert not any(map(gc.is_tracked, plain))  # no new object a user for the collector
    off = SnapshotRows(users=0)
    off.put("v1", "u1", ([], UserModel()))
    assert len(off) == 0 and off.get("v1", "u1") is None


def test_cycling_past_the_bound_keeps_the_newest_in_order() -> None:
    """Users cycled through past the bound (as a feed's traffic): the oldest put goes first
    every time, whatever was dropped before it (an O(1) drop, decision 0077)."""
    rows = SnapshotRows(users=100)
    users = [f"u{i}" for i in range(130)]
    for _ in range(5):
        for u in users:
            rows.put("v1", u, ([], UserModel()))
    assert len(rows) == 100
    assert list(rows._by_version["v1"]) == users[30:]
    assert rows.get("v1", "u29") is None and rows.get("v1", "u30") is not None


@pytest.fixture
def servers(
    client: redis.Redis, settings: RedisSettings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[list[pb_grpc.DebunkServiceStub], ServiceThread]]:
    """Two servers on one Redis: one keeping rows, one reading every row; one clock."""
    write_served(client, "v1", V1, prebunks={"u3": [("r1", 0.5)]})
    monkeypatch.setattr(rpc, "time", types.SimpleNamespace(time=lambda: NOW))
    kept = ServiceThread(settings, row_cache_users=100).start()
    plain = ServiceThread(settings, row_cache_users=0).start()
    channels = [grpc.insecure_channel(s.target) for s in (kept, plain)]
    try:
        for channel in channels:
            assert wait_for_health(channel, SERVING) == SERVING
        yield [pb_grpc.DebunkServiceStub(c) for c in channels], kept
    finally:
        for channel in channels:
            channel.close()
        kept.stop()
        plain.stop()


def _answers(stub: pb_grpc.DebunkServiceStub) -> list[pb.RankFeedResponse]:
    feeds = [stub.RankFeed(pb.RankFeedRequest(user_id=u, limit=5), timeout=5) for u in USERS]
    batch = stub.RankFeedBatch(pb.RankFeedBatchRequest(user_ids=USERS, limit=5), timeout=5)
    return [*feeds, batch]


def _same(stubs: list[pb_grpc.DebunkServiceStub]) -> list[pb.RankFeedResponse]:
    kept, plain = (_answers(s) for s in stubs)
    for k, p in zip(kept, plain, strict=True):
        assert k.SerializeToString() == p.SerializeToString()
    return kept


def _pinned(stub: pb_grpc.DebunkServiceStub, version: str, timeout: float = 10.0) -> None:
    """Poll until the server answers from ``version``."""
    deadline = time.monotonic() + timeout
    ask = pb.RankFeedRequest(user_id="u1", limit=1)
    while stub.RankFeed(ask, timeout=5).snapshot_version != version:
        assert time.monotonic() < deadline, f"{version} never pinned"


def test_kept_rows_answer_as_reading_every_row(
    servers: tuple[list[pb_grpc.DebunkServiceStub], ServiceThread], client: redis.Redis
) -> None:
    stubs, kept_server = servers
    first = _same(stubs)
    rows = kept_server.server._reader.rows  # type: ignore[union-attr]
    assert rows is not None and len(rows) >= 3 and rows.hits > 0  # u1, u2, u3 were kept
    assert [c.rumor_id for c in first[0].cards] and not first[3].cards

    # Delivery state and caps: u1's first card served and dismissed, u2's seen.
    d1 = first[0].cards[0]
    events = [event("u1", d1.debunk_id, pb.EVENT_TYPE_SERVED, ts=int(NOW) - 5),
              event("u1", d1.debunk_id, pb.EVENT_TYPE_DISMISS, ts=int(NOW) - 4,
                    rumor_id=d1.rumor_id),
              event("u2", first[1].cards[0].debunk_id, pb.EVENT_TYPE_IMPRESSION,
                    ts=int(NOW) - 3)]  # fmt: skip
    stubs[0].RecordEvents(pb.RecordEventsRequest(events=events), timeout=5)
    hits = rows.hits
    after_events = _same(stubs)
    assert rows.hits > hits
    assert [c.rumor_id for c in after_events[0].cards] != [c.rumor_id for c in first[0].cards]

    # A live exposure: u2 clicks an item on r1 (only r2 in the snapshot).
    reply = stubs[0].RecordExposures(
        pb.RecordExposuresRequest(events=[live_exposure("u2", "i1", NOW - 2)]), timeout=5
    )
    assert reply.stored == 1
    live = _same(stubs)
    assert "r1" in {c.rumor_id for c in live[1].cards}

    # A flip: v2's rows, not the kept v1 rows.
    write_served(client, "v2", V2)
    for stub in stubs:
        _pinned(stub, "v2")
    flipped = _same(stubs)
    assert flipped[0].snapshot_version == "v2"
    assert {c.rumor_id for c in flipped[0].cards} <= {"r2"}  # u1 has only r2 in v2
    assert all(
        c.reason.exposures == 2 for c in flipped[1].cards if c.rumor_id == "r2"
    )  # v2's state of u2's r2


def test_rows_are_neither_used_nor_kept_while_the_store_is_distrusted(
    client: redis.Redis, settings: RedisSettings
) -> None:
    write_served(client, "v1", V1)

    async def go() -> tuple[int, int, int, int, bool]:
        reader = SnapshotReader(open_transport(settings), rows=SnapshotRows(100))
        rows = reader.rows
        assert rows is not None
        trust = {"now": False}
        try:
            read = functools.partial(reader.feeds_view, "v1", ["u1", "u2"], surface="feed",
                                     now=NOW, trusted=lambda: trust["now"])  # fmt: skip
            await read()
            distrusted = len(rows)
            trust["now"] = True
            whole = await read()
            kept = len(rows)
            warm = await read()
            hits = rows.hits
            trust["now"] = False
            await read()  # distrusted again: the kept rows are not used
            return distrusted, kept, hits, rows.hits, _plain(whole) == _plain(warm)
        finally:
            await reader.transport.aclose()

    distrusted, kept, hits, hits_after, equal = asyncio.run(go())
    assert (distrusted, kept, hits, hits_after) == (0, 2, 2, 2)
    assert equal


def _plain(views: list) -> list:
    """Feed views as comparable values (factors as lists)."""
    return [(ex, dl, None if m.factors is None else m.factors.tolist(), m.prebunks,
             m.prebunk_logits) for ex, dl, m in views]  # fmt: skip


def test_kept_users_not_announced_live_are_read_without_the_live_keys(
    servers: tuple[list[pb_grpc.DebunkServiceStub], ServiceThread],
) -> None:
    """A kept user nobody announced live is asked for delivery and caps alone; once another
    server gives them live rows (announced on the stream), this one reads them again within
    its member poll, and answers as the server reading every row."""
    stubs, kept_server = servers
    wait_members_read(kept_server)
    server = kept_server.server
    assert server is not None
    transport = server._reader.transport
    shapes: list[list[int]] = []
    delivery_reads = transport.delivery_reads

    async def spied(user_keys, surface, timeout=None):  # type: ignore[no-untyped-def]
        shapes.append([len(row) for row in user_keys])
        return await delivery_reads(user_keys, surface, timeout)

    transport.delivery_reads = spied  # type: ignore[method-assign]
    _same(stubs)  # the first reads keep u1..u3's rows
    before = _same(stubs)
    assert shapes and all(n == 2 for s in shapes for n in s)  # no live keys asked
    assert "r1" not in {c.rumor_id for c in before[1].cards}

    # Through the other server: this one learns of u2's live rows from the stream only.
    reply = stubs[1].RecordExposures(
        pb.RecordExposuresRequest(events=[live_exposure("u2", "i1", NOW - 2)]), timeout=5
    )
    assert reply.stored == 1
    ask = pb.RankFeedRequest(user_id="u2", limit=5)
    deadline = time.monotonic() + 5
    while "r1" not in {c.rumor_id for c in stubs[0].RankFeed(ask, timeout=5).cards}:
        assert time.monotonic() < deadline, "the live row never reached the kept server"
    shapes.clear()
    live = _same(stubs)
    assert "r1" in {c.rumor_id for c in live[1].cards}
    assert any(n > 2 for s in shapes for n in s)  # u2's live keys are read again
