"""service.collector: the heap frozen each time the kept rows grow by a step, and only then;
full passes spaced by default; and over a real gRPC server and redis-server, what a version
held (its matcher, catalog and kept rows, frozen while it served) is freed once later flips
drop it (ranking.fused keeps the tables of the last MAX_TABLES catalogs), so the frozen heap
stays level across flips."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator

import grpc
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from feature_store.connection import RedisSettings
from ranking import fused as ranking_fused
from service import collector
from service.collector import FreezeOnGrowth
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING
from tests.fixtures.snapshots import write_served


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Leave the collector as the test found it."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


def test_freezes_once_per_step_of_growth(unfrozen: None) -> None:
    size = {"n": 0}
    freezer = FreezeOnGrowth(lambda: size["n"], step=10)
    size["n"] = 9
    assert not freezer.check() and gc.get_freeze_count() == 0
    kept = [[i] for i in range(100)]  # long-lived containers made while the rows fill
    size["n"] = 10
    assert freezer.check() and freezer.freezes == 1
    assert gc.get_freeze_count() > 0
    walked = {id(o) for o in gc.get_objects()}  # every generation a pass may walk
    assert gc.is_tracked(kept[0]) and id(kept[0]) not in walked
    assert not freezer.check()  # no growth since: no second freeze
    size["n"] = 3  # a flip starts the new version's rows from nothing: re-based
    assert not freezer.check()
    size["n"] = 12
    assert not freezer.check()
    size["n"] = 13
    assert freezer.check() and freezer.freezes == 2


def test_tune_spaces_full_passes_and_keeps_the_young_ones() -> None:
    was = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        collector.tune(0)  # the default: CPython's own
        assert gc.get_threshold() == (700, 10, 10)
        collector.tune(collector.FULL_PASS_EVERY)
        assert gc.get_threshold() == (700, 10, collector.FULL_PASS_EVERY)
    finally:
        gc.set_threshold(*was)


def test_full_passes_are_spaced_unless_asked_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEBUNK_GC_FULL_EVERY", raising=False)
    assert collector.configured_full_every() == collector.FULL_PASS_EVERY > 10
    monkeypatch.setenv("DEBUNK_GC_FULL_EVERY", "0")
    assert collector.configured_full_every() == 0


ROWS = [("u1", "r1", "click", 2), ("u1", "r2", "share", 3), ("u2", "r2", "impression", 4)]


def _pinned(stub: pb_grpc.DebunkServiceStub, version: str, timeout: float = 10.0) -> None:
    """Poll until the server answers u1 and u2 from ``version`` (their rows are kept)."""
    deadline = time.monotonic() + timeout
    asks = [pb.RankFeedRequest(user_id=u, limit=5) for u in ("u1", "u2")]
    while stub.RankFeed(asks[0], timeout=5).snapshot_version != version:
        assert time.monotonic() < deadline, f"{version} never pinned"
    assert all(stub.RankFeed(a, timeout=5).cards for a in asks)


def test_flips_free_what_older_versions_held(
    client: redis.Redis, settings: RedisSettings, unfrozen: None
) -> None:
    write_served(client, "v1", ROWS)
    svc = ServiceThread(settings, row_cache_users=100).start()
    channel = grpc.insecure_channel(svc.target)
    try:
        assert wait_for_health(channel, SERVING) == SERVING
        stub = pb_grpc.DebunkServiceStub(channel)
        _pinned(stub, "v1")
        server = svc.server
        assert server is not None
        reader = server._reader
        held = [
            weakref.ref(server._matchers.get("v1")),  # type: ignore[arg-type]
            weakref.ref(reader.cached_catalog("v1")),  # type: ignore[arg-type]
        ]
        rows = reader.rows
        assert rows is not None and rows.get("v1", "u1") is not None
        assert gc.get_freeze_count() > 0  # adopted: its catalog and matcher frozen
        frozen = []
        flips = ranking_fused.MAX_TABLES + 4  # past every per-version cache's bound
        for n in range(2, 2 + flips):
            write_served(client, f"v{n}", ROWS)
            _pinned(stub, f"v{n}")
            frozen.append(gc.get_freeze_count())
        # v1 left every per-version cache flips ago: frozen or not, it is gone.
        assert [ref() for ref in held] == [None, None] and "v1" not in rows._by_version
        # Each flip freezes what its version loads; the older ones' share goes with them, so
        # once the caches are full the frozen heap stays level.
        level = frozen[ranking_fused.MAX_TABLES]
        assert max(frozen[ranking_fused.MAX_TABLES :]) <= level * 1.05 + 500, frozen
    finally:
        channel.close()
        svc.stop()
