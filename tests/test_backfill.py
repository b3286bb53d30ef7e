"""Confirmation backfill: the item index names the row groups that can hold an item, a tag's
backfill writes the rumor's audience into the live exposure state, and that state equals what
the next nightly computes for the same users (real nightly job, real redis-server); a user known
only to the live layer gets the card from RankFeed over real gRPC."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import redis
from grpc_health.v1 import health_pb2

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.ids import InvalidId
from feature_store import keys
from feature_store.codecs import unpack_exposure, unpack_live_exposure
from feature_store.connection import RedisSettings
from feature_store.live_exposures import write_live_exposures
from feature_store.snapshots import current_version
from offline.nightly import item_index
from offline.nightly.backfill import backfill_tag
from offline.nightly.job import run_nightly
from tests.fixtures.servers import ServiceThread, wait_for_health

RUN_DATE = date(2026, 10, 5)
NOW = datetime(2026, 10, 5, 12, tzinfo=UTC)


@pytest.fixture
def world(small_world: Path, tmp_path: Path) -> tuple[Path, str, str, pa.Table]:
    """A copy of the small world without item texts (no matcher tags), the confirmed rumor with
    the most hand-tagged items, and its most seen item, whose tag is held back: (world, item,
    rumor, tags)."""
    out = tmp_path / "world"
    shutil.copytree(small_world, out)
    (out / "items.parquet").unlink()
    tags = pq.read_table(out / "tagged_items.parquet")
    rumors = [json.loads(x) for x in (out / "rumors.jsonl").read_text().splitlines() if x]
    confirmed = pa.array(sorted(r["rumor_id"] for r in rumors if r["status"] == "confirmed"))
    mine = tags.filter(pc.is_in(tags["rumor_id"], value_set=confirmed))
    counts = (
        mine.group_by("rumor_id")
        .aggregate([("item_id", "count")])
        .sort_by([("item_id_count", "descending"), ("rumor_id", "ascending")])
    )
    rumor = counts["rumor_id"][0].as_py()
    assert counts["item_id_count"][0].as_py() >= 2, "the rumor should carry several items"
    items = pa.array(sorted(tags.filter(pc.equal(tags["rumor_id"], rumor))["item_id"].to_pylist()))
    logs = pq.read_table(out / "exposures", columns=["item_id"])
    seen = logs.filter(pc.is_in(logs["item_id"], value_set=items)).group_by("item_id")
    ranked = seen.aggregate([("item_id", "count")]).sort_by(
        [("item_id_count", "descending"), ("item_id", "ascending")]
    )
    item = ranked["item_id"][0].as_py()  # the rumor's most seen item
    held = pc.and_(pc.equal(tags["item_id"], item), pc.equal(tags["rumor_id"], rumor))
    pq.write_table(tags.filter(pc.invert(held)), out / "tagged_items.parquet")
    return out, item, rumor, tags


def _rumor_state(client: redis.Redis, version: str, users: list[str], rumor: str) -> dict:
    """user -> raw snapshot value of ``rumor`` in ``version`` (only users that have one)."""
    pipe = client.pipeline(transaction=False)
    for u in users:
        pipe.hget(keys.user_exposures(version, u), rumor)
    return {u: v for u, v in zip(users, pipe.execute(), strict=True) if v is not None}


def _live(client: redis.Redis, rumor: str) -> dict[str, bytes]:
    """user -> raw live value of ``rumor``, for every live exposure hash."""
    out = {}
    for key in client.scan_iter(match=keys.live_exposures_prefix() + b"*", count=1000):
        value = client.hget(key, rumor)
        if value is not None:
            out[key.decode().split("{", 1)[1].rstrip("}")] = value
    return out


def _all_users(state_dir: Path) -> list[str]:
    gen = state_dir / "current" / "exposures.parquet"
    return sorted(set(pq.read_table(gen, columns=["user_id"])["user_id"].to_pylist()))


@pytest.mark.parametrize("behind", [0, 1], ids=["same-window", "a-day-behind"])
def test_backfill_equals_the_next_nightly(
    world: tuple[Path, str, str, pa.Table], tmp_path: Path, client: redis.Redis,
    settings: RedisSettings, behind: int,
) -> None:  # fmt: skip
    """With the last nightly on the same day (every partition's stored aggregates reused, only
    the new item read) or a day behind (the newest partition unindexed: read whole, for every
    item of the rumor)."""
    data, item, rumor, tags = world
    state = tmp_path / "state"
    first = run_nightly(data, RUN_DATE - timedelta(days=behind), state, settings, train=False)
    assert first["item_index"]["built"] == first["state"]["window"]
    before = current_version(client)
    assert before is not None
    summary = backfill_tag(data, state, [item], rumor, client, NOW, 30)
    assert summary["partitions"] == 5 and summary["reused"] == 5 - behind
    assert summary["indexed"] == 5 - behind and len(summary["unindexed"]) == behind
    assert summary["users"] > 0 and summary["rows_kept"] > 0
    live = _live(client, rumor)
    assert len(live) == summary["users"]
    assert all(client.ttl(keys.live_exposures(u)) > 29 * 86_400 for u in list(live)[:20])

    pq.write_table(tags, data / "tagged_items.parquet")  # the tag reaches the nightly's input
    second = run_nightly(data, RUN_DATE, state, settings, train=False)
    assert second["state"]["tags"]["added"] == 1
    after = current_version(client)
    nightly = _rumor_state(client, after, _all_users(state), rumor)
    assert set(live) == set(nightly), "the backfill reaches exactly the nightly's audience"
    for user, value in live.items():
        got, stamp = unpack_live_exposure(rumor, value)
        assert stamp == summary["as_of_ms"]
        assert got == unpack_exposure(rumor, nightly[user]), user
    old = _rumor_state(client, before, list(live), rumor)
    changed = [u for u in live if old.get(u) != nightly[u]]
    assert changed, "the held-back tag should change some users' state"

    again = backfill_tag(data, state, [item], rumor, client, NOW, 30, as_of_ms=summary["as_of_ms"])
    assert _live(client, rumor) == live and again["users"] == summary["users"]  # no double count


def test_the_index_names_only_row_groups_that_hold_an_item(tmp_path: Path) -> None:
    logs = tmp_path / "logs" / "dt=2026-10-01"
    logs.mkdir(parents=True)
    ts = pa.array(
        [datetime(2026, 10, 1, h, tzinfo=UTC) for h in range(6)], pa.timestamp("us", "UTC")
    )
    rows = pa.table({"user_id": ["u1", "u2", "u3", "u4", "u5", "u6"],
                     "item_id": ["a", "b", "b", "c", "", "a"], "ts": ts,
                     "surface": ["feed"] * 6, "action": ["click"] * 6})  # fmt: skip
    pq.write_table(rows, logs / "part-0.parquet", row_group_size=2)
    from offline.join.local import LocalEngine

    engine, state = LocalEngine(), tmp_path / "state"
    built = item_index.update_index(tmp_path / "logs", state, ["2026-10-01"], engine)
    assert built.built == ["2026-10-01"] and built.rows == 5  # the empty id is not indexed
    files = [logs / "part-0.parquet"]
    path = item_index.index_path(state, "2026-10-01", engine.fingerprint(files))
    assert item_index.lookup(path, ["a"]) == {"part-0.parquet": [0, 2]}
    assert item_index.lookup(path, ["b", "c"]) == {"part-0.parquet": [0, 1]}
    assert item_index.lookup(path, ["zz"]) == {}
    again = item_index.update_index(tmp_path / "logs", state, ["2026-10-01"], engine)
    assert again.kept == ["2026-10-01"] and not again.built  # idempotent
    gone = item_index.update_index(tmp_path / "logs", state, [], engine)
    assert gone.removed == ["2026-10-01"] and not path.exists()  # aged out of the window


def test_bad_ids_write_nothing(small_world: Path, tmp_path: Path, client: redis.Redis) -> None:
    for items, rumor in ((["ok"], "bad id"), (["{x}"], "r000000")):
        with pytest.raises(InvalidId):
            backfill_tag(small_world, tmp_path / "state", items, rumor, client, NOW, 30)
    assert not list(client.scan_iter(match=keys.live_exposures_prefix() + b"*"))


def test_a_user_known_only_to_the_live_layer_is_served_the_card(
    world: tuple[Path, str, str, pa.Table], tmp_path: Path, client: redis.Redis,
    settings: RedisSettings,
) -> None:  # fmt: skip
    data, item, rumor, _ = world
    run_nightly(data, RUN_DATE, tmp_path / "state", settings, train=False)
    version = current_version(client)
    backfill_tag(data, tmp_path / "state", [item], rumor, client, NOW, 30)
    live = _live(client, rumor)
    only_live = [u for u in sorted(live) if not client.exists(keys.user_exposures(version, u))]
    assert only_live, "some of the item's audience should be unknown to the snapshot"
    user = only_live[0]
    stale = f"{user}-stale"  # a live entry older than the snapshot's tags: ignored
    row = pq.read_table(tmp_path / "state" / "current" / "exposures.parquet").slice(0, 1)
    row = row.set_column(0, "user_id", pa.array([stale])).set_column(
        1, "rumor_id", pa.array([rumor])
    )
    write_live_exposures(client, row, as_of_ms=1)
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as channel:
            assert wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING) == 1
            stub = pb_grpc.DebunkServiceStub(channel)
            reply = stub.RankFeed(pb.RankFeedRequest(user_id=user, limit=10), timeout=5)
            cards = [c for c in reply.cards if c.rumor_id == rumor]
            assert cards, "the backfilled exposure should be served its debunk"
            expected, _ = unpack_live_exposure(rumor, live[user])
            assert cards[0].reason.exposures == expected.exposures
            reply = stub.RankFeed(pb.RankFeedRequest(user_id=stale, limit=10), timeout=5)
            assert list(reply.cards) == []
    finally:
        svc.stop()


def test_live_exposures_are_written_on_a_cluster(cluster_settings: RedisSettings) -> None:
    from tests.fixtures.snapshots import state

    c = cluster_settings.sync_client()
    try:
        rows = pa.Table.from_batches([state(("u1", "r1", 7), ("u2", "r1", 2), ("bad id", "r1", 1))])
        summary = write_live_exposures(c, rows, as_of_ms=42, ttl_s=3600)
        assert (summary.users, summary.pairs, summary.skipped_invalid_ids) == (2, 2, 1)
        got, stamp = unpack_live_exposure("r1", c.hget(keys.live_exposures("u1"), "r1"))
        assert (got.exposures, stamp) == (7, 42)
        assert 0 < c.ttl(keys.live_exposures("u2")) <= 3600
    finally:
        c.close()


def test_confirming_a_rumor_backfills_its_audience_and_notifies_its_spreaders(
    world: tuple[Path, str, str, pa.Table], tmp_path: Path, client: redis.Redis,
    settings: RedisSettings, redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys,
) -> None:  # fmt: skip
    """A rumor withdrawn at night and confirmed live: `debunk rumor confirm` backfills its whole
    audience into the live layer, and its sharers and commenters (found only by the backfill:
    the night's state holds no unconfirmed rumor) go to the outbox, once."""
    from cli.main import main
    from domain.vocab import ACTIONS

    data, _, rumor, tags = world
    pq.write_table(tags, data / "tagged_items.parquet")
    rows = [json.loads(x) for x in (data / "rumors.jsonl").read_text().splitlines() if x]
    for r in rows:
        if r["rumor_id"] == rumor:
            r["status"] = "withdrawn"
    (data / "rumors.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    state = tmp_path / "state"
    run_nightly(data, RUN_DATE, state, settings, train=False)
    assert rumor not in pq.read_table(state / "current" / "exposures.parquet")["rumor_id"]

    monkeypatch.setenv("REDIS_URL", redis_url)
    argv = ["rumor", "confirm", rumor, "--data", str(data), "--state", str(state),
            "--now", NOW.isoformat()]  # fmt: skip
    assert main([*argv, "--actor", "alice"]) == 0
    out = json.loads(capsys.readouterr().out)
    live = _live(client, rumor)
    assert out["backfill"]["users"] == len(live) > 0
    strongest = {u: ACTIONS[unpack_live_exposure(rumor, v)[0].strongest_action]
                 for u, v in live.items()}  # fmt: skip
    spreaders = {u for u, a in strongest.items() if a in ("comment", "share")}
    assert spreaders and out["notify"]["spreaders"] == len(spreaders)
    notified = [f[b"user_id"].decode() for _, f in client.xrange(keys.OUTBOX)]
    assert notified and len(notified) == len(set(notified)) == out["notify"]["notified"]
    assert set(notified) <= spreaders
    assert main([*argv, "--actor", "alice"]) == 0  # already confirmed: nothing changes
    assert client.xlen(keys.OUTBOX) == len(notified)
