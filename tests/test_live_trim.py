"""The trim of covered live buckets against a real redis-server: days before the watermark go,
the watermark's day loses only its earlier hours, later buckets stay; a moved pointer stops it;
and an ingest running at the same time loses nothing at or after the watermark."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import redis

from domain.exposure_days import bucket_field
from domain.exposure_screen import Screened
from domain.records import ExposureState
from feature_store import keys
from feature_store.live_ingest import apply_batch, decode_day
from feature_store.live_trim import trim_covered

CUT = int(datetime(2026, 10, 5, 14, tzinfo=UTC).timestamp())  # the watermark: 10-05 14:00
PART = b"\x01" + b"\x01\x00\x00\x00" + b"\x00" * 10  # any 15-byte partial: count 1
SCORED = PART + bytes([26])  # a 16-byte partial: a matcher tag's score byte (0.1)


def _fill(client: redis.Redis, users: int) -> None:
    """Each user: buckets on the day before, on the watermark's day around 14:00, the day after."""
    for i in range(users):
        u = f"u{i}"
        client.hset(keys.live_day(u, "20261004"), mapping={"05|r1": PART, "23|r2": PART})
        client.hset(keys.live_day(u, "20261005"),
                    mapping={"08|r1": PART, "13|r2": SCORED, "14|r1": PART, "23|r2": SCORED,
                             "r9": PART})  # fmt: skip  # r9: a field from before hourly buckets
        client.hset(keys.live_day(u, "20261006"), mapping={"00|r1": PART})


def test_trim_removes_only_what_the_watermark_covers(client: redis.Redis) -> None:
    client.set(keys.CURRENT, "v2")
    client.set("dbk:lx:{u0}", "not a live day key")
    _fill(client, 25)
    got = trim_covered(client, "v2", CUT, count=7)  # several SCAN batches
    assert got.batches > 1 and not got.superseded
    assert (got.days_deleted, got.buckets_deleted) == (25, 75)
    for i in range(25):
        assert not client.exists(keys.live_day(f"u{i}", "20261004"))
        kept = client.hgetall(keys.live_day(f"u{i}", "20261005"))
        assert kept == {b"14|r1": PART, b"23|r2": SCORED}, "values of any length kept whole"
        assert client.hkeys(keys.live_day(f"u{i}", "20261006")) == [b"00|r1"]
    assert client.exists("dbk:lx:{u0}")
    again = trim_covered(client, "v2", CUT)
    assert (again.days_deleted, again.buckets_deleted) == (0, 0), "a re-run removes nothing"


def test_a_moved_pointer_stops_the_trim(client: redis.Redis) -> None:
    client.set(keys.CURRENT, "v3")  # a newer flip, or a rollback, happened meanwhile
    _fill(client, 3)
    got = trim_covered(client, "v2", CUT)
    assert got.superseded and (got.days_deleted, got.buckets_deleted) == (0, 0)
    assert client.exists(keys.live_day("u0", "20261004"))
    assert len(client.hkeys(keys.live_day("u0", "20261005"))) == 5


def test_an_ingest_during_the_trim_loses_nothing_after_the_watermark(
    client: redis.Redis,
) -> None:
    client.set(keys.CURRENT, "v2")
    users, batches = 40, 60
    ts = CUT + 3_600 + 5  # 15:00:05, after the watermark
    part = ExposureState("r1", 1, ts, ts, 0, 1)

    def ingest() -> None:
        writer = redis.Redis(connection_pool=client.connection_pool)
        for _ in range(batches):
            screened = Screened()
            for i in range(users):
                screened.parts[(f"u{i}", "20261005")] = {bucket_field(15, "r1"): part}
                screened.parts[(f"u{i}", "20261004")] = {bucket_field(3, "r1"): part}
            apply_batch(writer, screened, source="test", ttl_s=86_400)

    thread = threading.Thread(target=ingest)
    thread.start()
    trims = 0
    while thread.is_alive() or trims == 0:
        trim_covered(client, "v2", CUT, count=5)
        trims += 1
    thread.join()
    trim_covered(client, "v2", CUT)
    assert trims > 1
    for i in range(users):
        day = decode_day(client.hgetall(keys.live_day(f"u{i}", "20261005")))
        assert day["r1"].exposures == batches, "every bucket after the watermark is kept"
        assert not client.exists(keys.live_day(f"u{i}", "20261004"))
