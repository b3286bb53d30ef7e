"""The same day fed live and then by the nightly equals a nightly-only run: the live buckets from
the snapshot's watermark on add exactly what the next nightly adds, and once that nightly's
watermark covers them the reader stops adding them (no double count, no gap). Also over a day
the lake has only in part: a nightly reading the log cut at 14:37 counts the rows before its
watermark (14:00) and the live buckets from 14:00 on stay counted, once. Real nightly job, real
redis-server, the reader the service reads with."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import redis

from domain.exposure_days import bucket_of, day_end
from domain.exposure_screen import screen
from feature_store import keys
from feature_store.connection import RedisSettings
from feature_store.live_ingest import TaggedItems, apply_batch, load_tagged
from feature_store.reader import SnapshotReader, decode_exposures
from feature_store.snapshots import current_version
from feature_store.transport.factory import open_transport
from offline.nightly.job import run_nightly

DAY = date(2026, 10, 5)
NOW = datetime(2026, 10, 5, 23, 59, tzinfo=UTC).timestamp()
WINDOW_S = 30 * 86_400


def _rows(logs: Path) -> list[tuple]:
    """The day's log rows as a shipper would send them (ts as unix seconds when typed)."""
    table = pq.read_table(logs, columns=["user_id", "item_id", "ts", "surface", "action"])
    out = []
    for r in table.to_pylist():
        ts = r["ts"].timestamp() if isinstance(r["ts"], datetime) else r["ts"]
        out.append((r["user_id"], r["item_id"], ts, r["surface"], r["action"]))
    return out


def _states(redis_url: str, version: str, users: list[str], live: bool) -> dict[str, list]:
    """user -> sorted (rumor, count, first, last, action, surfaces) as the service reads them."""

    async def go() -> dict[str, list]:
        transport = open_transport(RedisSettings(url=redis_url))
        reader = SnapshotReader(transport, live_exposures=live)
        try:
            out = {}
            for u in users:
                states = await reader.user_exposures(version, u, now=NOW)
                if states:
                    out[u] = sorted(tuple(s)[:6] for s in states)
            return out
        finally:
            await transport.aclose()

    return asyncio.run(go())


def test_a_day_fed_live_then_nightly_equals_the_nightly_alone(
    small_world: Path, tmp_path: Path, client: redis.Redis, settings: RedisSettings,
    redis_url: str,
) -> None:  # fmt: skip
    data = tmp_path / "world"
    shutil.copytree(small_world, data)
    (data / "items.parquet").unlink()  # hand tags only: the same tag set on both nights
    live_state = tmp_path / "live"
    run_nightly(data, date(2026, 10, 4), live_state, settings, train=False)
    before = current_version(client)
    tagged = load_tagged(client, TaggedItems())
    assert tagged.live_after == day_end(date(2026, 10, 4)) and tagged.items

    rows = _rows(data / "exposures" / f"dt={DAY.isoformat()}")
    stored = 0
    for lo in range(0, len(rows), 10_000):
        part = screen(rows[lo : lo + 10_000], tagged.rumors, now=NOW, window_s=WINDOW_S,
                      live_after=tagged.live_after)  # fmt: skip
        assert apply_batch(client, part, source="test", ttl_s=WINDOW_S)
        stored += part.stored
    assert stored > 0
    users = sorted({r[0] for r in rows if r[0] and keys.valid_id(r[0])} | _snapshot_users(
        client, before))  # fmt: skip
    live = _states(redis_url, before, users, live=True)
    snapshot_only = _states(redis_url, before, users, live=False)
    assert live != snapshot_only, "the live day should change some users' states"

    run_nightly(data, DAY, tmp_path / "alone", settings, train=False)
    alone_version = current_version(client)
    alone = _states(redis_url, alone_version, users, live=False)
    assert live == alone, "live partials add exactly what the nightly adds for the day"

    run_nightly(data, DAY, live_state, settings, train=False)  # the live path's next nightly
    after = current_version(client)
    assert after not in (before, alone_version)
    assert client.hget(keys.meta(after), "run_date") == b"2026-10-05"
    assert _states(redis_url, after, users, live=True) == alone, "no double count after it"


def _snapshot_users(client: redis.Redis, version: str) -> set[str]:
    """The users with an exposure hash in ``version``."""
    prefix = keys.user_exposures_prefix(version)
    return {
        k[len(prefix) + 1 : -1].decode()
        for k in client.scan_iter(match=prefix + b"*", count=1000)
        if decode_exposures(client.hgetall(k))
    }


CUT_AT = datetime(2026, 10, 5, 14, 37, tzinfo=UTC).timestamp()  # when the lake is read
WATERMARK = int(datetime(2026, 10, 5, 14, tzinfo=UTC).timestamp())


def test_a_nightly_over_a_partial_day_leaves_the_rest_to_the_live_buckets(
    small_world: Path, tmp_path: Path, client: redis.Redis, settings: RedisSettings,
    redis_url: str,
) -> None:  # fmt: skip
    data = tmp_path / "world"
    shutil.copytree(small_world, data)
    (data / "items.parquet").unlink()
    part = data / "exposures" / f"dt={DAY.isoformat()}" / "part-00000.parquet"
    full = pq.read_table(part)
    run_nightly(data, DAY, tmp_path / "alone", settings, train=False)
    users = sorted({r[0] for r in _rows(part) if keys.valid_id(r[0] or "")})
    alone = _states(redis_url, current_version(client), users, live=False)

    live_state = tmp_path / "live"
    run_nightly(data, date(2026, 10, 4), live_state, settings, train=False)
    tagged = load_tagged(client, TaggedItems())
    rows = _rows(part)  # the whole day arrives live, as it happens
    for lo in range(0, len(rows), 10_000):
        batch = screen(rows[lo : lo + 10_000], tagged.rumors, now=NOW, window_s=WINDOW_S,
                       live_after=tagged.live_after)  # fmt: skip
        apply_batch(client, batch, source="test", ttl_s=WINDOW_S)
    later = _bucket_fields(client, keep=lambda day, hour: (day, hour) >= ("20261005", 14))
    assert later and _bucket_fields(client, keep=lambda day, hour: hour < 14)

    ts = pc.field("ts") < pa.scalar(datetime.fromtimestamp(CUT_AT, UTC), pa.timestamp("us", "UTC"))
    pq.write_table(full.filter(ts), part)  # the lake at 14:37: the day up to 14:37
    summary = run_nightly(data, DAY, live_state, settings, train=False, read_at=CUT_AT + 60)
    cut = current_version(client)
    assert client.hget(keys.meta(cut), "live_after") == str(WATERMARK).encode()
    assert summary["live_trim"]["days_deleted"] == 0 and summary["live_trim"]["buckets_deleted"]
    assert _bucket_fields(client, keep=lambda day, hour: True) == later, "only covered ones go"
    assert _states(redis_url, cut, users, live=False) != alone, "the snapshot misses the rest"
    assert _states(redis_url, cut, users, live=True) == alone, "live buckets add it, once"
    again = run_nightly(data, DAY, live_state, settings, train=False, read_at=CUT_AT + 120)
    assert DAY.isoformat() in again["state"]["partitions"]["unchanged"], "same cut: reused"
    assert _states(redis_url, current_version(client), users, live=True) == alone
    tagged = load_tagged(client, tagged)
    assert tagged.live_after == WATERMARK
    late = screen(rows[:50], tagged.rumors, now=NOW, window_s=WINDOW_S,
                  live_after=tagged.live_after)  # fmt: skip
    assert late.stored == sum(1 for r in rows[:50] if r[2] >= WATERMARK and tagged.rumors(r[1]))

    pq.write_table(full, part)  # the day complete in the lake
    summary = run_nightly(data, DAY, live_state, settings, train=False)
    after = current_version(client)
    assert client.hget(keys.meta(after), "live_after") == str(day_end(DAY)).encode()
    assert summary["live_trim"]["days_deleted"] > 0 and not _bucket_fields(
        client, lambda d, h: True
    )
    assert _states(redis_url, after, users, live=False) == alone
    for lo in range(0, len(rows), 10_000):  # an ingest still on the old watermark writes again
        apply_batch(client, screen(rows[lo : lo + 10_000], tagged.rumors, now=NOW,
                                   window_s=WINDOW_S, live_after=WATERMARK),
                    source="test", ttl_s=WINDOW_S)  # fmt: skip
    assert _states(redis_url, after, users, live=True) == alone, "covered buckets never count"


def _bucket_fields(client: redis.Redis, keep) -> set[tuple[bytes, str]]:
    """(live day key, field) of every live bucket whose (day, hour) ``keep`` accepts."""
    out = set()
    for k in client.scan_iter(match=keys.live_day_pattern(), count=1000):
        day = keys.live_day_of(k)
        for f in client.hkeys(k):
            if keep(day, bucket_of(f.decode())[0]):
                out.add((k, f.decode()))
    return out
