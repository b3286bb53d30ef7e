"""Materialization from Spark executors (offline.nightly.executor_writer over
feature_store.partition_writer): the same Redis bytes as the driver's write (its member filter
too), one flip, a failed job leaves the current version serving; and the nightly state over a
``file://`` log URI."""

from __future__ import annotations

import json
import shutil
import time
from datetime import date
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import redis

from cli.main import main
from domain.membership import MemberFilter
from feature_store import keys, members
from feature_store.partition_writer import PartitionCounts, write_partition
from feature_store.settings import RedisSettings
from feature_store.snapshots import current_version
from offline.io import catalog
from offline.join.engine import engine_named
from offline.nightly.executor_writer import ExecutorExposures
from offline.nightly.job import item_rumors, train_night
from offline.nightly.materialize import materialize
from offline.nightly.state import StateRun, update_state

RUN_DATE = date(2026, 10, 5)
# The counts two writes of one night must agree on (not its timings or bytes).
COUNTS = ("users", "pairs", "rumors", "debunks", "items", "model_users", "skipped_invalid_ids")


def _night(world: Path, state_dir: Path) -> tuple[StateRun, list, list, dict[str, list[str]]]:
    rumors = catalog.load_rumors(catalog.find_input(world, catalog.RUMOR_FILES))
    debunks = catalog.load_debunks(catalog.find_input(world, catalog.DEBUNK_FILES))
    tags = catalog.load_sourced_tags(catalog.find_input(world, catalog.TAG_FILES))
    confirmed = {r.rumor_id for r in rumors if r.confirmed}
    state = update_state(world / "exposures", tags, state_dir, RUN_DATE, confirmed=confirmed)
    return state, rumors, debunks, item_rumors(tags, confirmed)


def _hashes(client: redis.Redis, version: str, kind: bytes) -> dict[bytes, list]:
    """Every per-user hash of ``version`` (``kind`` u: exposures, m: models) by user tag, its
    fields in Redis's order."""
    prefix = b"dbk:v:" + version.encode() + b":" + kind
    return {
        key[len(prefix) :]: list(client.hgetall(key).items())
        for key in client.scan_iter(match=prefix + b"{*", count=1000)
    }


def _meta(client: redis.Redis, version: str) -> dict[str, str]:
    raw = client.hgetall(keys.meta(version))
    return {k: raw[k.encode()].decode() for k in COUNTS if k.encode() in raw}


@pytest.mark.parametrize("trained", [False, True], ids=["codec1", "with-ranker"])
def test_executors_write_the_same_bytes_as_the_driver(
    spark: None,
    small_world: Path,
    tmp_path: Path,
    client: redis.Redis,
    settings: RedisSettings,
    trained: bool,
) -> None:
    client.flushdb()
    state, rumors, debunks, items = _night(small_world, tmp_path / "state")
    models = (
        train_night(small_world, state.exposures, rumors, debunks, RUN_DATE) if trained else None
    )
    if trained:
        assert models is not None and models.feed is not None  # the logits are exercised
    engine = engine_named("spark")
    written = {}
    for where, exposures in (("driver", None), ("executors", ExecutorExposures(engine, settings))):
        summary = materialize(
            client, state.exposures, rumors, debunks, item_rumors=items, keep=5, models=models,
            exposures=exposures,
        )  # fmt: skip
        assert current_version(client) == summary.version
        written[where] = summary.version
    driver, executors = written["driver"], written["executors"]
    users = _hashes(client, driver, b"u:")
    assert len(users) > 50 and _hashes(client, executors, b"u:") == users
    assert _hashes(client, executors, b"m:") == _hashes(client, driver, b"m:")
    assert _meta(client, executors) == _meta(client, driver)
    assert int(_meta(client, driver)["pairs"]) == pq.read_metadata(state.exposures).num_rows
    assert client.hlen(keys.WRITING) == 0
    version_byte = {v[0] for fields in users.values() for _, v in fields}
    assert version_byte == {2 if trained else 1}
    _same_member_filter(client, driver, executors, users, trained)


def _same_member_filter(
    client: redis.Redis, driver: str, executors: str, users: dict[bytes, list], trained: bool
) -> None:
    """The executors' snapshot carries the driver's member filter, bit for bit, and every user
    with an exposure or (when trained) a prebunk row passes it."""
    raw = {v: client.get(keys.members(v)) for v in (driver, executors)}
    assert raw[executors] is not None and raw[executors] == raw[driver]
    flt = members.decode_filter(raw[executors])
    assert flt is not None
    exposed = {u.decode()[1:-1] for u in users}
    prebunked = {
        u.decode()[1:-1]
        for u, fields in _hashes(client, executors, b"m:").items()
        if any(f == b"p" for f, _ in fields)
    }
    assert bool(prebunked) == trained, "a trained night should have prebunk rows"
    everyone = sorted(exposed | prebunked)
    assert flt.n == len(everyone) and all(flt.contains_many(everyone))
    assert all(u in flt for u in everyone)
    assert sum(flt.contains_many([f"stranger-{i}" for i in range(2000)])) < 100


def test_a_failed_executor_write_keeps_serving_and_the_next_gc_collects_it(
    spark: None,
    small_world: Path,
    tmp_path: Path,
    client: redis.Redis,
    settings: RedisSettings,
) -> None:
    client.flushdb()
    state, rumors, debunks, items = _night(small_world, tmp_path / "state")
    serving = materialize(client, state.exposures, rumors, debunks, item_rumors=items).version
    unreachable = RedisSettings(url="redis://127.0.0.1:1", socket_timeout=1.0)
    with pytest.raises(Exception, match=r"(?i)connect"):
        materialize(
            client, state.exposures, rumors, debunks, item_rumors=items,
            exposures=ExecutorExposures(engine_named("spark"), unreachable, tasks=2),
        )  # fmt: skip
    assert current_version(client) == serving
    (partial,) = [v.decode() for v in client.hkeys(keys.WRITING)]
    assert json.loads(client.hget(keys.WRITING, partial))["abandoned"] is True
    assert client.exists(keys.rumors(partial))  # the driver's part of the write is there
    after = materialize(client, state.exposures, rumors, debunks, item_rumors=items)
    assert partial in after.collected
    assert not list(client.scan_iter(match=keys.version_pattern(partial)))
    assert client.hlen(keys.WRITING) == 0 and current_version(client) == after.version


def test_a_partition_is_written_by_any_process_with_the_drivers_codec(
    small_world: Path, tmp_path: Path, client: redis.Redis, settings: RedisSettings
) -> None:
    client.flushdb()
    state, rumors, debunks, items = _night(small_world, tmp_path / "state")
    driver = materialize(client, state.exposures, rumors, debunks, item_rumors=items, keep=5)
    table = pq.read_table(state.exposures)
    users = sorted(set(table["user_id"].to_pylist()))
    half = users[len(users) // 2]
    again = "20990101T000000000000"
    counts = PartitionCounts()
    low = pc.less(table["user_id"], half)
    for part in (table.filter(low), table.filter(pc.invert(low))):
        counts = counts + write_partition(settings, again, part.to_batches(max_chunksize=97))
    assert (counts.users, counts.pairs) == (driver.users, driver.pairs)
    assert _hashes(client, again, b"u:") == _hashes(client, driver.version, b"u:")
    # the partitions' users, hashed as they were written, make the driver's member filter
    rebuilt = MemberFilter.build(counts.member_hashes()).to_bytes()
    assert rebuilt == client.get(keys.members(driver.version))


def test_a_nightly_over_a_file_uri_reruns_idempotently_and_picks_up_late_data(
    spark: None,
    small_world: Path,
    tmp_path: Path,
    client: redis.Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    client.flushdb()
    logs = tmp_path / "lake" / "exposures"
    shutil.copytree(small_world / "exposures", logs)
    state = tmp_path / "state"

    def night(engine: str = "spark", logs_at: str = f"file://{logs}", at: Path = state) -> dict:
        argv = ["nightly", "--data", str(small_world), "--date", RUN_DATE.isoformat(), "--state",
                str(at), "--no-train", "--engine", engine, "--logs-uri", logs_at]  # fmt: skip
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out)

    night("local", str(logs), tmp_path / "local-state")
    first = night()
    assert first["snapshot"]["users"] > 50 and not first["state"]["partitions"]["unchanged"]
    assert client.hget(keys.meta(first["snapshot"]["version"]), "materialized_on") == b"executors"
    assert pq.read_table(state / "current" / "exposures.parquet").equals(
        pq.read_table(tmp_path / "local-state" / "current" / "exposures.parquet")
    )
    again = night()
    assert again["state"]["partitions"]["scanned"] == []
    assert again["state"]["partitions"]["unchanged"] == first["state"]["window"]
    assert again["snapshot"]["pairs"] == first["snapshot"]["pairs"]
    late_day = first["state"]["window"][-2]
    (source,) = sorted((logs / f"dt={late_day}").glob("*.parquet"))[:1]
    shutil.copy(source, source.with_name("late-arrival.parquet"))  # the same rows, late
    late = night()
    assert late["state"]["partitions"]["scanned"] == [late_day]
    rows = sum(pq.read_metadata(f).num_rows for f in (logs / f"dt={late_day}").glob("*.parquet"))
    assert late["state"]["join"]["rows_read"] == rows  # the late partition, and it alone


def test_on_a_cluster_each_partition_is_routed_by_slot_as_the_driver_writes(
    small_world: Path, tmp_path: Path, cluster_settings: RedisSettings
) -> None:
    cluster = cluster_settings.sync_client()
    try:
        cluster.flushdb(target_nodes=redis.RedisCluster.PRIMARIES)
        state, rumors, debunks, items = _night(small_world, tmp_path / "state")
        driver = materialize(cluster, state.exposures, rumors, debunks, item_rumors=items)
        again = "20990101T000000000001"
        table = pq.read_table(state.exposures)
        counts = write_partition(cluster_settings, again, table.to_batches(max_chunksize=500))
        assert (counts.users, counts.pairs) == (driver.users, driver.pairs)
        users = _hashes(cluster, driver.version, b"u:")
        assert len(users) == driver.users > 50 and _hashes(cluster, again, b"u:") == users
    finally:
        cluster.close()


def test_the_driver_beats_while_others_write(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feature_store import snapshots

    client.flushdb()
    monkeypatch.setattr(snapshots, "HEARTBEAT_EVERY_S", 0.05)
    writer = snapshots.SnapshotWriter(client)
    first = json.loads(client.hget(keys.WRITING, writer.version))["heartbeat"]
    with writer.beating():
        time.sleep(0.4)
    assert json.loads(client.hget(keys.WRITING, writer.version))["heartbeat"] > first
    assert snapshots.collect_garbage(client) == []  # alive and beating: left alone
    writer.abandon()
    assert snapshots.collect_garbage(client) == [writer.version]


def test_executor_materialization_needs_the_spark_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    base = ["nightly", "--data", str(tmp_path), "--date", "2026-10-05", "--state", str(tmp_path)]
    assert main([*base, "--materialize", "executors"]) == 2
    assert "--materialize executors needs --engine spark" in capsys.readouterr().err
    assert main([*base, "--write-tasks", "4"]) == 2
    assert "--write-tasks needs --materialize executors" in capsys.readouterr().err
    with pytest.raises(ValueError, match="needs --engine spark"):
        ExecutorExposures(engine_named("local"), RedisSettings(url="redis://127.0.0.1:1"))
