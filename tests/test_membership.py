"""The member filter (issue 21, item 2): no false negatives on a nightly's snapshot, on backfilled
and on live-ingested users; a non-member's answer equals what a store read gives (cards and the
degraded flag), without the read; a flip swaps the filter with the snapshot. Real redis-server,
real gRPC servers on loopback."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pytest
import redis
from google.protobuf.json_format import MessageToDict

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.exposure_screen import screen
from domain.membership import MemberFilter, distinct_ids, id_hashes
from feature_store import keys, members
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis
from feature_store.exposure_consumer import ExposureConsumer
from feature_store.live_exposures import write_live_exposures
from feature_store.live_ingest import TaggedItems, apply_batch, load_tagged
from feature_store.snapshots import current_version
from offline.nightly.job import run_nightly
from service.membership import STALE_S
from tests.fixtures.servers import (
    ServiceThread,
    filtered_and_reading,
    wait_for_health,
    wait_members_read,
)
from tests.fixtures.service import SERVING, event, exposure_batch, live_exposure, snapshot

MEMBERS = [("u1", "r1", "share", 3), ("u1", "r2", "click", 2), ("u2", "r2", "like", 4)]


def _users_of(client: redis.Redis, pattern: bytes) -> set[str]:
    """The user ids inside the hash tags of the keys matching ``pattern``."""
    return {
        k.decode().split("{", 1)[1].split("}", 1)[0]
        for k in client.scan_iter(match=pattern, count=1000)
    }


def _announced(client: redis.Redis) -> set[str]:
    return members.parse_entries(client.xrange(keys.LIVE_MEMBERS))[1]


def test_distinct_ids_counts_exactly_with_repeats_and_first_half_collisions() -> None:
    """The filter's id count (its size and header) is exact: repeated rows count once, and two
    ids whose first 64 bits collide still count twice; the bits do not depend on repeats."""
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 2**63, size=(5_000, 2), dtype=np.uint64)
    collide = rows[:40].copy()
    collide[:, 1] += np.uint64(1)  # same first half, another second half: other ids
    mixed = np.concatenate([rows, rows[::3], collide, collide[::2], rows[:5]])
    rng.shuffle(mixed)
    assert distinct_ids(mixed) == len(np.unique(mixed, axis=0)) == 5_040
    assert distinct_ids(np.empty((0, 2), "<u8")) == 0
    once = np.unique(mixed, axis=0)
    assert MemberFilter.build(mixed).to_bytes() == MemberFilter.build(once).to_bytes()
    assert MemberFilter.build(mixed).n == 5_040


def test_the_filter_holds_every_member_and_about_its_rate_of_others() -> None:
    ids = [f"user-{i}" for i in range(30_000)]
    f = MemberFilter.from_bytes(MemberFilter.build(id_hashes(ids)).to_bytes())
    assert all(u in f for u in ids) and all(f.contains_many(ids))
    others = [f"other-{i}" for i in range(30_000)]
    one_by_one = [u in f for u in others]
    assert one_by_one == f.contains_many(others)
    assert 0.003 < sum(one_by_one) / len(others) < 0.02  # the chosen 1%
    empty = MemberFilter.build(id_hashes([]))
    assert "user-1" not in empty and empty.contains_many(["a", "b"]) == [False, False]


def test_the_c_test_hashes_as_hashlib_and_answers_as_numpy() -> None:
    """``domain._idbloom`` (decision 0077): its BLAKE2b is hashlib's at every length around the
    128-byte block, and its answers are the numpy reference's, one id or many."""
    import hashlib

    from domain import membership

    if membership._idbloom is None:
        pytest.skip("domain._idbloom is not built (no C compiler at install)")
    rng = np.random.default_rng(11)
    for n in [*range(0, 300), 1000, 4096]:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert membership._idbloom.digest16(data) == hashlib.blake2b(data, digest_size=16).digest()
    ids = [f"user-{i}" for i in range(5_000)] + ["用户-1", "ｕｓｅｒ", "x" * 500]
    f = MemberFilter.build(id_hashes(ids))
    others = [f"other-{i}" for i in range(20_000)] + ["用户-2", "y" * 300, ""]
    assert f.contains_many(ids) == f.contains_many_numpy(ids) == [True] * len(ids)
    many = f.contains_many(others)
    assert many == f.contains_many_numpy(others) == [u in f for u in others]
    assert 0 < sum(many) < len(others) // 20


def test_every_user_with_rows_in_a_nightly_snapshot_passes_its_filter(
    small_world: Path, tmp_path: Path, client: redis.Redis, settings: RedisSettings
) -> None:
    run_nightly(small_world, date(2026, 10, 5), tmp_path / "state", settings)
    version = current_version(client)
    exposed = _users_of(client, keys.user_exposures_prefix(version) + b"*")
    modelled = _users_of(client, keys.user_model(version, "x").replace(b"{x}", b"*"))
    prebunked = {u for u in modelled if client.hexists(keys.user_model(version, u), "p")}
    assert len(exposed) > 100 and prebunked, "the world should have both kinds of row"
    f = members.decode_filter(client.get(keys.members(version)))
    assert f is not None and f.n == len(exposed | prebunked)
    everyone = sorted(exposed | prebunked)
    assert all(u in f for u in everyone) and all(f.contains_many(everyone))
    strangers = [f"stranger-{i}" for i in range(5000)]
    assert sum(f.contains_many(strangers)) < 250  # a filter, not "everyone"


def test_every_user_given_live_rows_was_announced(
    client: redis.Redis, settings: RedisSettings
) -> None:
    """Backfill, RecordExposures, the stream consumer and apply_batch: every user with a live
    key is on the announced stream (the stream is written before the rows)."""
    snapshot(client, "v1", MEMBERS)
    backfilled = exposure_batch([("u-bf1", "r1", "click", 3), ("u-bf2", "r2", "share", 4)])
    write_live_exposures(
        client, pa.Table.from_batches([backfilled]), as_of_ms=int(time.time() * 1e3)
    )
    now = time.time()
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            stub = pb_grpc.DebunkServiceStub(ch)
            rows = [live_exposure("u-rpc", "i1", now), live_exposure("u-rpc2", "i2", now)]
            assert stub.RecordExposures(pb.RecordExposuresRequest(events=rows), timeout=5).stored
    finally:
        svc.stop()
    for n in range(3):
        row = {"user_id": f"u-st{n}", "item_id": "i1", "ts": str(now), "surface": "feed"}
        client.xadd(keys.EXPOSURE_STREAM, {**row, "action": "click"})
    ExposureConsumer(client, consumer="t").run(exit_when_idle=True)
    tagged = load_tagged(client, TaggedItems())
    raw = [("u-sync", "i2", now, "feed", "like")]
    window = 86_400 * 30
    screened = screen(raw, tagged.rumors, now=now, window_s=window, live_after=tagged.live_after)
    apply_batch(client, screened, source="rpc", ttl_s=window)
    live = _users_of(client, b"dbk:lx:*") | _users_of(client, b"dbk:li:*")
    assert {"u-bf1", "u-bf2", "u-rpc", "u-rpc2", "u-st0", "u-st2", "u-sync"} <= live
    assert live <= _announced(client)


def _feed(stub: pb_grpc.DebunkServiceStub, user: str) -> pb.RankFeedResponse:
    return stub.RankFeed(pb.RankFeedRequest(user_id=user, limit=5), timeout=5)


def _same(reply: object) -> dict:
    """An answer as a dict without card scores (recency moves them between two calls)."""
    out = MessageToDict(reply)
    for feed in [out, *out.get("feeds", [])]:
        for card in feed.get("cards", []):
            card.pop("score", None)
    return out


def _cap_reads(client: redis.Redis) -> int:
    """HGETs Redis ran: a feed read asks the day's cap with one; the servers' polls use none."""
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_hget", {}).get("calls", 0))


def test_a_non_member_gets_what_a_store_read_gives_without_the_read(
    client: redis.Redis, settings: RedisSettings
) -> None:
    snapshot(client, "v1", MEMBERS)
    with filtered_and_reading(settings) as (fast, read):
        # delivery state alone makes no card: a served and a dismissed non-member
        marks = [event("u-none", "d1", pb.EVENT_TYPE_SERVED),
                 event("u-dis", "d2", pb.EVENT_TYPE_DISMISS)]  # fmt: skip
        read.RecordEvents(pb.RecordEventsRequest(events=marks), timeout=5)
        users = ["u1", "u2", "u-none", "u-dis", "nobody", "u1"]
        for user in users:
            request = pb.RankFeedRequest(user_id=user, limit=5)
            assert _same(fast.RankFeed(request, timeout=5)) == _same(
                read.RankFeed(request, timeout=5)
            )
        batch = pb.RankFeedBatchRequest(user_ids=users + [f"x{i}" for i in range(200)], limit=3)
        got = fast.RankFeedBatch(batch, timeout=5)
        assert _same(got) == _same(read.RankFeedBatch(batch, timeout=5))
        assert [len(f.cards) for f in got.feeds[:3]] == [2, 1, 0]
        before = _cap_reads(client)
        for i in range(50):
            assert not _feed(fast, f"x{i}").cards
        assert _cap_reads(client) - before == 0, "non-members should not be read"
        # a user given live rows through the other server is a member here within a second
        stored = read.RecordExposures(
            pb.RecordExposuresRequest(events=[live_exposure("u-later", "i1")]), timeout=5
        )
        assert stored.stored == 1
        # the target is ~1 s (a 0.2 s poll); 2 s leaves room for a loaded 2-core machine
        deadline = time.monotonic() + 2.0
        while not _feed(fast, "u-later").cards:
            assert time.monotonic() < deadline, "a live user was not served within 2 s"
            time.sleep(0.01)


def test_a_flip_swaps_the_filter_with_the_snapshot(
    client: redis.Redis, settings: RedisSettings
) -> None:
    snapshot(client, "v1", [("u-old", "r1", "share", 3)])
    svc = ServiceThread(settings, member_filter=True).start()
    replies: list[pb.RankFeedResponse] = []
    stop = threading.Event()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            wait_members_read(svc)
            stub = pb_grpc.DebunkServiceStub(ch)

            def keep_asking() -> None:
                while not stop.is_set():
                    replies.append(_feed(stub, "u-new"))

            asker = threading.Thread(target=keep_asking)
            asker.start()
            while len(replies) < 5:
                assert asker.is_alive()
                time.sleep(0.01)
            snapshot(client, "v2", [("u-new", "r2", "click", 4)])
            deadline = time.monotonic() + 5
            while not replies or replies[-1].snapshot_version != "v2":
                assert time.monotonic() < deadline, "the flip was not adopted"
                time.sleep(0.01)
            seen = len(replies)
            while len(replies) < seen + 5:
                time.sleep(0.01)
            stop.set()
            asker.join()
            old = _feed(stub, "u-old")
    finally:
        stop.set()
        svc.stop()
    by_version = {
        v: [bool(r.cards) for r in replies if r.snapshot_version == v] for v in ("v1", "v2")
    }
    assert by_version["v1"] and not any(by_version["v1"]), "v1 has no exposure for u-new"
    assert by_version["v2"] and all(by_version["v2"]), "v2's filter must hold u-new"
    assert old.snapshot_version == "v2" and not old.cards


def test_non_members_are_degraded_as_a_read_would_be_once_redis_stops(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    settings = RedisSettings(url=server.url, socket_timeout=0.2)
    snapshot(redis.Redis.from_url(server.url), "v1", MEMBERS)
    try:
        with filtered_and_reading(settings) as stubs:
            up = [_feed(s, "nobody") for s in stubs]
            assert [(r.degraded, len(r.cards)) for r in up] == [(False, 0), (False, 0)]
            server.stop()
            # at once (a lost connection) or once the announced users are STALE_S old
            deadline = time.monotonic() + STALE_S + 2.0
            while not _feed(stubs[0], "nobody").degraded:
                assert time.monotonic() < deadline, "a non-member's answer never said degraded"
            down = [_feed(s, "nobody") for s in stubs]
            assert [(r.degraded, len(r.cards)) for r in down] == [(True, 0), (True, 0)]
    finally:
        server.stop()


def test_live_rows_vouches_only_when_the_set_covers_the_version_and_is_fresh() -> None:
    """``Membership.live_rows``: the announced set's test when it was read from no later than
    the version's start and lately; None (read every live key) otherwise."""
    from types import SimpleNamespace

    from service.membership import Membership

    flt = MemberFilter.build(id_hashes(["u1"]))
    reader = SimpleNamespace(member_filter=lambda v: (flt, b"100-0") if v == "v1" else None)
    m = Membership(reader, SimpleNamespace(version="v1"))  # type: ignore[arg-type]
    assert m.live_rows("v1") is None  # the set was never read
    m.live, m.start, m.read_at = {"u-live"}, b"100-0", time.monotonic()
    test = m.live_rows("v1")
    assert test is not None and test("u-live") and not test("u1")
    assert m.live_rows("v0") is None  # a version without a filter
    m.start = b"200-0"  # read from after the version's start: it may miss announcements
    assert m.live_rows("v1") is None
    m.start, m.read_at = b"100-0", time.monotonic() - STALE_S - 1
    assert m.live_rows("v1") is None  # stale: Redis may not be answering
