"""Live exposures through matcher-tagged items, then the nightly of the same day, equal the
nightly alone, tag scores included: the live screen weighs a row with the score the join gives
the item's tag (decision 0034), and days combine by the best score. Real nightly job, real
redis-server, the reader the service reads with."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import redis

from domain.exposure_screen import screen
from feature_store import keys
from feature_store.connection import RedisSettings
from feature_store.live_ingest import TaggedItems, apply_batch, load_tagged
from feature_store.reader import SnapshotReader
from feature_store.snapshots import current_version
from feature_store.transport.factory import open_transport
from offline.nightly.job import run_nightly

DAY = date(2026, 10, 5)
NOW = datetime(2026, 10, 5, 23, 59, tzinfo=UTC).timestamp()
WINDOW_S = 30 * 86_400


def _rows(logs: Path) -> list[tuple]:
    """The day's log rows as a shipper would send them (ts as unix seconds)."""
    table = pq.read_table(logs, columns=["user_id", "item_id", "ts", "surface", "action"])
    return [(r["user_id"], r["item_id"], r["ts"].timestamp() if r["ts"] else None,
             r["surface"], r["action"]) for r in table.to_pylist()]  # fmt: skip


def _states(redis_url: str, version: str, users: list[str], live: bool) -> dict[str, list]:
    """user -> sorted (rumor, count, first, last, action, surfaces, tag score) as read."""

    async def go() -> dict[str, list]:
        transport = open_transport(RedisSettings(url=redis_url))
        reader = SnapshotReader(transport, live_exposures=live)
        try:
            out = {}
            for u in users:
                states = await reader.user_exposures(version, u, now=NOW)
                if states:
                    out[u] = sorted((*tuple(s)[:6], s.tag_score) for s in states)
            return out
        finally:
            await transport.aclose()

    return asyncio.run(go())


def _matched(data: Path) -> int:
    """Turn two of every three tagged items into matcher tags scored 0.55 to 0.95."""
    path = data / "tagged_items.parquet"
    t = pq.read_table(path)
    codes = [sum(map(ord, i)) for i in t["item_id"].to_pylist()]
    matched = [k % 3 != 0 for k in codes]
    score = [0.55 + (k % 5) * 0.1 if m else 1.0 for k, m in zip(codes, matched, strict=True)]
    out = pa.table({"item_id": t["item_id"], "rumor_id": t["rumor_id"],
                    "source": ["matched" if m else "manual" for m in matched],
                    "score": pa.array(score, pa.float64())})  # fmt: skip
    pq.write_table(out, path)
    return sum(matched)


def test_live_through_matched_items_then_nightly_equals_the_nightly_alone(
    small_world: Path, tmp_path: Path, client: redis.Redis, settings: RedisSettings,
    redis_url: str,
) -> None:  # fmt: skip
    data = tmp_path / "world"
    shutil.copytree(small_world, data)
    (data / "items.parquet").unlink()  # no matcher run: the tag file's scores on both nights
    assert _matched(data) > 0
    run_nightly(data, date(2026, 10, 4), tmp_path / "live", settings, train=False)
    before = current_version(client)
    tagged = load_tagged(client, TaggedItems())
    assert tagged.scores, "the snapshot should carry the matcher tags' scores"

    rows = _rows(data / "exposures" / f"dt={DAY.isoformat()}")
    for lo in range(0, len(rows), 10_000):
        part = screen(rows[lo : lo + 10_000], tagged.rumors, now=NOW, window_s=WINDOW_S,
                      live_after=tagged.live_after, score_of=tagged.score_of)  # fmt: skip
        assert apply_batch(client, part, source="test", ttl_s=WINDOW_S)
    users = sorted({r[0] for r in rows if r[0] and keys.valid_id(r[0])})
    live = _states(redis_url, before, users, live=True)
    assert any(s[6] < 1.0 for states in live.values() for s in states)

    run_nightly(data, DAY, tmp_path / "alone", settings, train=False)
    alone = _states(redis_url, current_version(client), users, live=False)
    assert live == alone, "live partials weigh the day as the nightly does"
    run_nightly(data, DAY, tmp_path / "live", settings, train=False)
    assert _states(redis_url, current_version(client), users, live=True) == alone
