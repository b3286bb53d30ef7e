"""The store-read contract: every transport gives the same answers for the same snapshot.

One snapshot (the served world of tests/fixtures/service: catalog, items, exposures, models)
plus delivery state, read through the transport ``open_transport`` picks for each deployment:
the pipelined RESP lanes over TCP, a unix socket and TLS (with AUTH), and redis-py over a real
3-node Redis Cluster. Feed reads (exposures, delivery, today's cap, the user's model side), the
catalog, items, members' exposures, the version pointer, error replies and deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import redis

from domain.delivery import DeliveryEvent, day_of
from domain.models import EMPTY_USER, FeedModel
from domain.vocab import ACTIONS
from feature_store import keys
from feature_store.delivery import queue_events
from feature_store.embedded import EmbeddedRedis
from feature_store.reader import SnapshotReader
from feature_store.row_cache import SnapshotRows
from feature_store.settings import RedisSettings
from feature_store.transport.base import StoreTransport
from feature_store.transport.factory import open_transport
from tests.fixtures.snapshots import write_served

NOW = datetime(2026, 10, 7, 12, tzinfo=UTC).timestamp()
ROWS = [("u1", "r1", "click", 2), ("u1", "r2", "share", 3), ("u2", "r2", "impression", 4),
        ("u3", "r3", "like", 5)]  # fmt: skip
FACTORS = np.array([0.5, -1.0, 2.0], dtype=np.float32)
MODEL = FeedModel(
    debunk_row={"d1": 0, "d1m": 1, "d2": 2},
    factors=np.arange(15, dtype=np.float32).reshape(3, 5),
    default_user=np.ones(5, dtype=np.float32),
)


@dataclass
class Store:
    """One deployment under test: how to reach it, which transport it should get, and the
    redis-server processes behind it (to stop them)."""

    settings: RedisSettings
    expected: str  # the transport's name
    processes: list[Any] = field(default_factory=list)

    def writer(self) -> redis.Redis:
        return self.settings.sync_client()

    def flush(self) -> None:
        c = self.writer()
        if self.settings.cluster:
            c.flushdb(target_nodes=redis.RedisCluster.PRIMARIES)
        else:
            c.flushdb()
        c.close()

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Every server process stopped (SIGSTOP: connections stay open, nothing answers)."""
        if not self.processes:
            pytest.skip("not our redis-server: cannot stop it")
        for p in self.processes:
            os.kill(p.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for p in self.processes:
                os.kill(p.pid, signal.SIGCONT)


def _procs(*servers: EmbeddedRedis | None) -> list[Any]:
    return [s._proc for s in servers if s is not None and s.owner and s._proc is not None]


@pytest.fixture(params=["tcp", "unix", "tls", "cluster"])
def store(request: pytest.FixtureRequest) -> Store:
    kind = request.param
    if kind == "tcp":
        server = request.getfixturevalue("redis_server")
        s = Store(RedisSettings(url=request.getfixturevalue("redis_url")), "resp", _procs(server))
    elif kind == "unix":
        url = request.getfixturevalue("unix_url")
        s = Store(RedisSettings(url=url), "resp", _procs(request.getfixturevalue("redis_server")))
    elif kind == "tls":
        tls = request.getfixturevalue("tls_redis")
        s = Store(tls.settings(), "resp", _procs(tls.server))
    else:
        cluster = request.getfixturevalue("embedded_cluster")
        s = Store(request.getfixturevalue("cluster_settings"), "redis-py", _procs(*cluster.servers))
    s.flush()
    return s


def served(store: Store, version: str = "v1") -> None:
    """The contract snapshot, and u1's delivery state: served d1 and saw it today, dismissed
    r3, and one more card served yesterday (not today's cap)."""
    c = store.writer()
    write_served(c, version, ROWS, model=MODEL, user_factors={"u1": FACTORS},
                 prebunks={"u1": [("r2", 0.75), ("r1", 0.25)], "u2": [("r1", 0.5)]})  # fmt: skip
    pipe = c.pipeline(transaction=False)
    queue_events(pipe, [
        DeliveryEvent("u1", "d1", "r1", "feed", "served", int(NOW)),
        DeliveryEvent("u1", "d1", "r1", "feed", "impression", int(NOW) + 1),
        DeliveryEvent("u1", "d3", "r3", "feed", "dismiss", int(NOW) + 2),
        DeliveryEvent("u1", "d2", "r2", "feed", "served", int(NOW) - 86400),
        DeliveryEvent("u1", "d2", "r2", "search", "served", int(NOW)),
    ])  # fmt: skip
    pipe.execute()
    c.close()


def run(store: Store, body: Callable[[SnapshotReader], Coroutine[Any, Any, Any]]) -> Any:
    """``body(reader)`` over the transport chosen for ``store``, closed afterwards."""

    async def go() -> Any:
        transport: StoreTransport = open_transport(store.settings)
        assert transport.name == store.expected
        try:
            return await body(SnapshotReader(transport))
        finally:
            await transport.aclose()

    return asyncio.run(go())


def by_rumor(exposures: list) -> dict[str, tuple[int, str, int]]:
    return {e.rumor_id: (e.exposures, ACTIONS[e.strongest_action], e.last_ts) for e in exposures}


def october(day: int) -> int:
    return int(datetime(2026, 10, day, tzinfo=UTC).timestamp())


def test_the_feed_read_gives_exposures_delivery_caps_and_the_user_model(store: Store) -> None:
    served(store)

    async def body(reader: SnapshotReader) -> Any:
        return await reader.feeds_view("v1", ["u1", "u2", "nobody"], surface="feed", now=NOW,
                                       timeout=5.0)  # fmt: skip

    (ex1, dl1, m1), (ex2, dl2, m2), (ex0, dl0, m0) = run(store, body)
    assert by_rumor(ex1) == {"r1": (2, "click", october(2)), "r2": (2, "share", october(3))}
    assert dl1.served == {"d1": int(NOW), "d2": int(NOW)}  # the last time, on any surface
    assert dl1.impression == {"d1": int(NOW) + 1} and dl1.seen("d1") and not dl1.seen("d2")
    assert dl1.dismissed_rumors == {"r3": int(NOW) + 2}
    assert dl1.served_today == 1  # feed today: d1 (d2 was yesterday, or on search)
    assert m1.factors is not None and m1.factors.tolist() == FACTORS.tolist()
    assert m1.prebunks == (("r2", 0.75), ("r1", 0.25))
    assert by_rumor(ex2) == {"r2": (2, "impression", october(4))}
    assert dl2.served == {} and dl2.served_today == 0
    assert m2.factors is None and m2.prebunks == (("r1", 0.5),)
    assert ex0 == [] and dl0.served_today == 0 and not dl0.saw_any and m0 == EMPTY_USER


def test_one_users_feed_read_and_another_surfaces_cap(store: Store) -> None:
    served(store)

    async def body(reader: SnapshotReader) -> Any:
        feed = await reader.feed_view("v1", "u1", surface="feed", now=NOW, timeout=5.0)
        search = await reader.feed_view("v1", "u1", surface="search", now=NOW)
        tomorrow = await reader.feed_view("v1", "u1", surface="feed", now=NOW + 86400)
        return feed, search, tomorrow

    feed, search, tomorrow = run(store, body)
    assert by_rumor(feed[0]) == by_rumor(search[0]) == by_rumor(tomorrow[0])
    assert (feed[1].served_today, search[1].served_today, tomorrow[1].served_today) == (1, 1, 0)
    assert day_of(NOW) != day_of(NOW + 86400)


def test_a_read_with_kept_snapshot_rows_equals_a_whole_read(store: Store) -> None:
    served(store)
    users = ["u1", "u2", "nobody", "u3"]
    user_keys = keys.feed_keys("v1", users, day_of(NOW), live=True, live_days=("20261007",))

    async def body(reader: SnapshotReader) -> Any:
        whole = await reader.transport.feed_reads(user_keys, "feed", 5.0)
        part = await reader.transport.delivery_reads(
            [row[1:3] + row[4:] for row in user_keys], "feed", 5.0
        )
        reader.rows = SnapshotRows(100)
        trusted = lambda: True  # noqa: E731
        first = await reader.feeds_view("v1", users[:3], surface="feed", now=NOW,
                                        timeout=5.0, trusted=trusted)  # fmt: skip
        mixed = await reader.feeds_view("v1", users, surface="feed", now=NOW,
                                        timeout=5.0, trusted=trusted)  # fmt: skip
        plain = await reader.feeds_view("v1", users, surface="feed", now=NOW, timeout=5.0)
        return whole, part, first, mixed, plain, reader.rows.hits

    whole, part, first, mixed, plain, hits = run(store, body)
    per = len(user_keys[0])
    assert part == [r for i, r in enumerate(whole) if i % per not in (0, 3)]
    assert part[0] and part[1] is not None  # u1's delivery hash and today's cap
    assert hits == 3  # u1, u2 and nobody were kept after the first read; u3 read whole
    for got, want in zip(mixed, plain, strict=True):
        assert by_rumor(got[0]) == by_rumor(want[0]) and got[1] == want[1]
        assert got[2].prebunks == want[2].prebunks
        assert (got[2].factors is None) == (want[2].factors is None)
    assert by_rumor(mixed[0][0]) == {"r1": (2, "click", october(2)), "r2": (2, "share", october(3))}
    assert mixed[0][1].served_today == 1 and mixed[0][2].factors.tolist() == FACTORS.tolist()


def test_the_catalog_items_and_members_exposures(store: Store) -> None:
    served(store)

    async def body(reader: SnapshotReader) -> Any:
        return (
            await reader.catalog("v1"),
            await reader.items_rumors("v1", ["i1", "i2", "unknown", "i3"]),
            await reader.item_rumors("v1", "i2"),
            await reader.exposed_rumors("v1", ["u1", "u2", "u3", "nobody"], ["r1", "r2", "r9"]),
            await reader.exposed_rumors("v1", ["u1", "u2", "u3", "nobody"]),
            await reader.user_exposures("v1", "u1"),
            await reader.user_exposures("v1", "nobody"),
        )

    catalog, items, one, members, every, u1, nobody = run(store, body)
    assert sorted(catalog.rumors) == ["r1", "r2", "r3"]
    assert sorted(catalog.debunks) == ["d1", "d1m", "d2", "d3"]
    assert [d.debunk_id for d in catalog.debunks_by_rumor["r1"]] == ["d1", "d1m"]  # official first
    assert catalog.rumors["r3"].status == "withdrawn"
    assert catalog.model is not None and catalog.model.debunk_row == MODEL.debunk_row
    assert catalog.model.factors.tolist() == MODEL.factors.tolist()
    assert items == [["r1"], ["r1", "r2"], [], ["r3"]] and one == ["r1", "r2"]
    assert members == [{"r1", "r2"}, {"r2"}, set(), set()]
    assert every == [{"r1", "r2"}, {"r2"}, {"r3"}, set()]  # all each saw
    assert by_rumor(u1) == {"r1": (2, "click", october(2)), "r2": (2, "share", october(3))}
    assert nobody == []


def test_the_version_pointer_follows_each_commit(store: Store) -> None:
    async def current(reader: SnapshotReader) -> str | None:
        return await reader.current_version()

    assert run(store, current) is None
    served(store, "v1")
    assert run(store, current) == "v1"
    write_served(store.writer(), "v2", [("u9", "r1", "share", 6)])

    async def after(reader: SnapshotReader) -> Any:
        version = await reader.current_version()
        return version, await reader.user_exposures(version, "u9")

    version, u9 = run(store, after)
    assert version == "v2" and by_rumor(u9) == {"r1": (2, "share", october(6))}


def test_error_replies_raise_and_empty_pipelines_need_no_round_trip(store: Store) -> None:
    c = store.writer()
    c.set(keys.user_exposures("v1", "u1"), b"not a hash")
    c.close()

    async def body(reader: SnapshotReader) -> Any:
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await reader.user_exposures("v1", "u1")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await reader.feed_view("v1", "u1", surface="feed", now=NOW, timeout=5.0)
        return (
            await reader.transport.pipeline([]),
            await reader.transport.pipeline([], timeout=0),
            await reader.items_rumors("v1", []),
            await reader.user_exposures("v1", "u2"),  # the transport is still usable
        )

    assert run(store, body) == ([], [], [], [])


def test_a_call_with_no_time_left_is_not_sent(store: Store) -> None:
    served(store)

    async def body(reader: SnapshotReader) -> Any:
        with pytest.raises(TimeoutError):
            await reader.feed_view("v1", "u1", surface="feed", now=NOW, timeout=0)
        with pytest.raises(TimeoutError):
            await reader.transport.pipeline([(b"GET", keys.CURRENT)], timeout=-1.0)
        return await reader.current_version()

    assert run(store, body) == "v1"


def test_a_deadline_is_kept_when_redis_does_not_answer(store: Store) -> None:
    served(store)

    async def body(reader: SnapshotReader) -> Any:
        first = await reader.feed_view("v1", "u1", surface="feed", now=NOW, timeout=5.0)
        with store.stopped():
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await reader.feed_view("v1", "u1", surface="feed", now=NOW, timeout=0.1)
            waited = time.monotonic() - started
        deadline = time.monotonic() + 10  # back: the next reads answer (within a fresh deadline)
        while True:
            try:
                again = await reader.feed_view("v1", "u1", surface="feed", now=NOW, timeout=2.0)
                break
            except (TimeoutError, redis.ConnectionError):
                if time.monotonic() > deadline:
                    raise
        return first, waited, again

    first, waited, again = run(store, body)
    assert 0.09 <= waited < 1.0
    assert by_rumor(again[0]) == by_rumor(first[0]) and again[1].served_today == 1


def test_a_read_without_a_deadline_is_bounded_by_the_socket_timeout(store: Store) -> None:
    served(store)
    store.settings = dataclasses.replace(store.settings, socket_timeout=0.2)

    async def body(reader: SnapshotReader) -> Any:
        assert await reader.current_version() == "v1"
        with store.stopped():
            started = time.monotonic()
            with pytest.raises((TimeoutError, redis.ConnectionError)):
                await reader.user_exposures("v1", "u1")
            return time.monotonic() - started

    assert run(store, body) < 3.0
