"""Service reads and delivery state in a real Redis: one round trip per feed read on either
transport, exact keys, delivery that survives flips and expires on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa
import pytest
import redis
import redis.asyncio
from redis.asyncio.connection import Connection

from domain.delivery import DeliveryEvent, day_of
from feature_store import keys
from feature_store.delivery import CAP_TTL_S, DELIVERY_TTL_S, queue_events
from feature_store.reader import SnapshotReader
from feature_store.settings import RedisSettings
from feature_store.transport.base import StoreTransport
from feature_store.transport.factory import open_transport
from feature_store.transport.redis_py import RedisPyTransport
from feature_store.transport.resp import RespTransport
from tests.fixtures.snapshots import write

NOW = datetime(2026, 10, 7, 12, tzinfo=UTC).timestamp()


class CountingConnection(Connection):
    """Counts writes to the socket: one per round trip (a pipeline sends once)."""

    sends = 0

    async def send_packed_command(self, command, check_health=True):
        CountingConnection.sends += 1
        return await super().send_packed_command(command, check_health)


def record(url: str, *events: DeliveryEvent) -> None:
    c = redis.Redis.from_url(url)
    pipe = c.pipeline(transaction=False)
    queue_events(pipe, list(events))
    pipe.execute()
    c.close()


def ev(event: str, debunk: str = "d1", rumor: str = "r1", ts: float = NOW) -> DeliveryEvent:
    return DeliveryEvent("u1", debunk, rumor, "feed", event, int(ts))


def test_delivery_keys_have_exact_bytes() -> None:
    assert keys.delivery("u1") == b"dbk:dlv:{u1}"
    assert keys.daily_caps("u1", "20261007") == b"dbk:cap:{u1}:20261007"
    with pytest.raises(keys.InvalidId):
        keys.daily_caps("u1", "2026-10-07")
    with pytest.raises(keys.InvalidId):
        keys.delivery("u}1")


def count_round_trips(transport: StoreTransport) -> Callable[[], int]:
    """Count what ``transport`` writes to Redis from now on: one write per round trip (a
    pipeline goes out at once). Its connections must be open already."""
    if isinstance(transport, RespTransport):
        writes = 0
        for lane in transport.pool._lanes:
            write = lane.transport.write

            def counting(data: bytes, write=write) -> None:
                nonlocal writes
                writes += 1
                write(data)

            lane.transport.write = counting  # type: ignore[method-assign]
        return lambda: writes
    CountingConnection.sends = 0
    return lambda: CountingConnection.sends


@pytest.mark.parametrize("kind", ["resp", "redis-py"])
def test_a_feed_read_is_one_round_trip_and_the_catalog_is_cached(
    client: redis.Redis, redis_url: str, kind: str
) -> None:
    write(client, "v1", ("u1", "r1", 3))
    record(redis_url, ev("impression"), ev("served", ts=NOW))

    async def go() -> tuple[int, int, object]:
        if kind == "resp":
            transport: StoreTransport = RespTransport(RedisSettings(url=redis_url), size=1)
        else:
            c = redis.asyncio.Redis.from_url(redis_url, connection_class=CountingConnection)
            transport = RedisPyTransport(c)
        reader = SnapshotReader(transport)
        try:
            await reader.catalog("v1")
            sends = count_round_trips(transport)
            await reader.catalog("v1")
            assert sends() == 0  # cached
            exposures, delivery, _ = await reader.feed_view("v1", "u1", surface="feed", now=NOW)
            return sends(), len(exposures), delivery
        finally:
            await transport.aclose()

    sends, n_exposures, delivery = asyncio.run(go())
    assert sends == 1
    assert n_exposures == 1
    assert delivery.seen("d1") and delivery.served_today == 1  # type: ignore[attr-defined]


def test_delivery_survives_a_flip(client: redis.Redis, redis_url: str) -> None:
    write(client, "v1", ("u1", "r1", 3))
    record(redis_url, ev("click"), ev("dismiss", rumor="r9"))
    write(client, "v2", ("u1", "r1", 4))
    write(client, "v3", ("u1", "r1", 5))  # v1 is collected; delivery is not versioned

    async def go():
        transport = open_transport(RedisSettings(url=redis_url))
        try:
            reader = SnapshotReader(transport)
            return (await reader.feed_view("v3", "u1", surface="feed", now=NOW))[1]
        finally:
            await transport.aclose()

    delivery = asyncio.run(go())
    assert delivery.click == {"d1": int(NOW)} and delivery.dismissed_rumors == {"r9": int(NOW)}
    assert not client.exists(keys.meta("v1"))


def test_delivery_keys_carry_ttls(client: redis.Redis, redis_url: str) -> None:
    record(redis_url, ev("served"))
    assert 0 < client.ttl(keys.delivery("u1")) <= DELIVERY_TTL_S
    assert 0 < client.ttl(keys.daily_caps("u1", day_of(NOW))) <= CAP_TTL_S


def test_caps_count_served_cards_per_surface_and_day(client: redis.Redis, redis_url: str) -> None:
    record(redis_url, ev("served", "d1"), ev("served", "d2"), ev("served", "d3", ts=NOW + 86400))
    assert client.hget(keys.daily_caps("u1", day_of(NOW)), "feed") == b"2"
    assert client.hget(keys.daily_caps("u1", day_of(NOW + 86400)), "feed") == b"1"


def test_events_are_validated_before_touching_a_key() -> None:
    with pytest.raises(keys.InvalidId, match="event must be one of"):
        DeliveryEvent("u1", "d1", "r1", "feed", "liked", 1)
    with pytest.raises(keys.InvalidId, match="surface must be one of"):
        DeliveryEvent("u1", "d1", "r1", "tv", "click", 1)
    with pytest.raises(keys.InvalidId):
        DeliveryEvent("u 1", "d1", "r1", "feed", "click", 1)


@pytest.mark.parametrize("kind", ["resp", "redis-py"])
def test_live_exposures_replace_older_snapshot_states_in_the_same_round_trip(
    client: redis.Redis, redis_url: str, kind: str
) -> None:
    from feature_store.live_exposures import write_live_exposures
    from tests.fixtures.snapshots import state

    write(client, "v1", ("u1", "r1", 3))  # no tags_as_of: any live entry is newer
    write(client, "v2", ("u1", "r1", 3))
    client.hset(keys.meta("v2"), "tags_as_of", "5000")  # a nightly that read the tags later
    live = pa.Table.from_batches([state(("u1", "r1", 7), ("u2", "r1", 2))])
    assert write_live_exposures(client, live, as_of_ms=4000).users == 2

    async def go() -> dict[str, object]:
        if kind == "resp":
            transport: StoreTransport = RespTransport(RedisSettings(url=redis_url), size=1)
        else:
            c = redis.asyncio.Redis.from_url(redis_url, connection_class=CountingConnection)
            transport = RedisPyTransport(c)
        reader = SnapshotReader(transport)
        out: dict[str, object] = {}
        try:
            for v in ("v1", "v2"):
                await reader.catalog(v)
                sends = count_round_trips(transport)
                views = await reader.feeds_view(v, ["u1", "u2"], surface="feed", now=NOW)
                out[f"{v}-sends"] = sends()
                out[v] = [[(s.rumor_id, s.exposures) for s in view[0]] for view in views]
                for among in (["r1"], None):  # HMGET of the rumor, and HKEYS + the live hash
                    seen = await reader.exposed_rumors(v, ["u1", "u2", "u3"], among)
                    members = [
                        m for m, s in zip(["u1", "u2", "u3"], seen, strict=True) if "r1" in s
                    ]
                    out[f"{v}-members-{among}"] = members
        finally:
            await transport.aclose()
        return out

    got = asyncio.run(go())
    assert got["v1-sends"] == 1 and got["v2-sends"] == 1
    assert got["v1"] == [[("r1", 7)], [("r1", 2)]]  # replaced, not 3 + 7; u2 from the live layer
    assert got["v1-members-['r1']"] == got["v1-members-None"] == ["u1", "u2"]
    assert got["v2"] == [[("r1", 3)], []]  # the later nightly wins: live entries ignored
    assert got["v2-members-['r1']"] == got["v2-members-None"] == ["u1"]


@pytest.mark.parametrize("kind", ["resp", "redis-py"])
def test_every_mix_of_live_layers_reads_as_the_layer_rules_merge_them(
    client: redis.Redis, redis_url: str, kind: str
) -> None:
    """Snapshot, backfill and 0, 1 or 2 live days in any mix (most users: none live) give in
    one round trip exactly what merge_layers then add_days make of the decoded replies."""
    from datetime import timedelta

    from domain.exposure_days import add_days
    from domain.exposure_layers import merge_layers
    from feature_store.codecs import pack_exposure, pack_live_exposure
    from feature_store.live_ingest import decode_day
    from feature_store.reader import decode_exposures, decode_live

    today = datetime.fromtimestamp(NOW, UTC).date()
    days = [(today - timedelta(days=k)).strftime("%Y%m%d") for k in (1, 0)]
    rows = [("u0", "r1", 3), ("u1", "r1", 2), ("u2", "r1", 4), ("u3", "r1", 1), ("u4", "r2", 5)]
    for v, covers in (("v1", 2), ("v2", 1), ("v3", 0)):  # 2, 1 and 0 live days
        write(client, v, *rows, keep=3)
        client.hset(keys.meta(v), "covers_through", (today - timedelta(days=covers)).isoformat())
    part = int(NOW) - 60
    client.hset(
        keys.live_exposures("u1"), "r1", pack_live_exposure(pack_exposure(9, 1, 2, 1, 1), 1)
    )
    client.hset(
        keys.live_exposures("u4"), "r3", pack_live_exposure(pack_exposure(2, 1, 2, 0, 2), 1)
    )
    client.hset(keys.live_day("u2", days[1]), "r1", pack_exposure(1, part, part, 3, 4))
    client.hset(keys.live_day("u3", days[1]), "r7", pack_exposure(2, part - 9, part, 1, 1))
    for day in days:
        client.hset(
            keys.live_day("u4", day),
            mapping={
                "r2": pack_exposure(1, part, part, 2, 1),
                "r3": pack_exposure(1, part, part, 4, 8),
            },
        )
    client.hset(keys.live_day("u6", days[0]), "r1", pack_exposure(1, part, part, 0, 1))
    users = [f"u{k}" for k in range(7)]

    def reference(v: str, user: str, n_days: int) -> list:
        snap = decode_exposures(client.hgetall(keys.user_exposures(v, user)))
        merged = merge_layers(snap, decode_live(client.hgetall(keys.live_exposures(user))), 0)
        read = days[len(days) - n_days :]
        return add_days(merged, [decode_day(client.hgetall(keys.live_day(user, d))) for d in read])

    async def go() -> dict[str, object]:
        if kind == "resp":
            transport: StoreTransport = RespTransport(RedisSettings(url=redis_url), size=1)
        else:
            c = redis.asyncio.Redis.from_url(redis_url, connection_class=CountingConnection)
            transport = RedisPyTransport(c)
        reader = SnapshotReader(transport)
        out: dict[str, object] = {}
        try:
            for v in ("v1", "v2", "v3"):
                await reader.catalog(v)
                sends = count_round_trips(transport)
                views = await reader.feeds_view(v, users, surface="feed", now=NOW)
                out[f"{v}-sends"] = sends()
                out[v] = [view[0] for view in views]
                out[f"{v}-one"] = [await reader.user_exposures(v, u, now=NOW) for u in users]
        finally:
            await transport.aclose()
        return out

    got = asyncio.run(go())
    for v, n_days in (("v1", 2), ("v2", 1), ("v3", 0)):
        want = [reference(v, u, n_days) for u in users]
        assert got[f"{v}-sends"] == 1
        assert got[v] == got[f"{v}-one"] == want
    assert [s.exposures for s in got["v1"][4]] == [7, 4]  # r2: 5 + 1 + 1; r3: 2 + 1 + 1
    assert [(s.rumor_id, s.exposures) for s in got["v2"][3]] == [("r1", 1), ("r7", 2)]
    assert got["v1"][0] == got["v3"][0] and got["v3"][6] == [] and got["v1"][5] == []
