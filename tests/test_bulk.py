"""The bulk HSET loader: payloads streamed from sender threads over one or several
connections, replies counted, errors surfaced (the payload bytes are pinned in test_encoding)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest
import redis

from feature_store import keys
from feature_store.bulk import BulkConnection, BulkLoader, BulkLoadError
from feature_store.snapshots import SnapshotWriter, current_version
from feature_store.transport.encoding import hset_payload
from tests.fixtures.snapshots import state, write


def test_many_chunks_load_completely(client: redis.Redis) -> None:
    bulk = BulkConnection(client)
    for part in range(20):
        users = pa.array([f"u{part}-{i}" for i in range(5000) for _ in (0, 1)])
        fields = pa.array([f"r{j}" for _ in range(5000) for j in (0, 1)])
        bulk.send(*hset_payload(b"t:", users, fields, pa.array([b"x" * 15] * 10000)))
    bulk.finish()
    assert client.dbsize() == 100_000
    assert client.hgetall(b"t:{u7-42}") == {b"r0": b"x" * 15, b"r1": b"x" * 15}


def test_an_error_reply_fails_the_load(client: redis.Redis) -> None:
    client.set(b"t:{u1}", b"not a hash")
    bulk = BulkConnection(client)
    bulk.send(
        *hset_payload(
            b"t:",
            pa.array(["u0", "u1", "u2"]),
            pa.array(["r", "r", "r"]),
            pa.array([b"v", b"v", b"v"]),
        )
    )
    with pytest.raises(BulkLoadError, match="WRONGTYPE"):
        bulk.finish()
    assert client.ping()  # the pool still works after the failed load


def _chunk(part: int, users: int = 3000) -> tuple[bytes, int]:
    """One payload of ``users`` two-field hashes, the users named after ``part``."""
    ids = pa.array([f"u{part}-{i}" for i in range(users) for _ in (0, 1)])
    fields = pa.array([f"r{j}" for _ in range(users) for j in (0, 1)])
    return hset_payload(b"t:", ids, fields, pa.array([b"%d" % part] * (2 * users)))


def test_a_loader_spreads_chunks_over_its_connections_and_loads_them_all(
    client: redis.Redis,
) -> None:
    before = {c["id"] for c in client.client_list()}
    bulk = BulkLoader(client, connections=3)
    lanes = [c for c in client.client_list() if c["id"] not in before]
    assert len(lanes) == 3  # three connections of the client's pool, opened at once
    for part in range(12):
        bulk.send(*_chunk(part))
    bulk.finish()
    assert client.dbsize() == 36_000
    assert client.hgetall(b"t:{u11-2999}") == {b"r0": b"11", b"r1": b"11"}
    assert client.connection_pool._in_use_connections == set()  # all handed back


def test_an_error_on_one_connection_fails_the_whole_load(client: redis.Redis) -> None:
    client.set(b"t:{u1-5}", b"not a hash")
    bulk = BulkLoader(client, connections=2)
    for part in range(4):
        bulk.send(*_chunk(part))  # part 1 goes to the second connection
    with pytest.raises(BulkLoadError, match="WRONGTYPE"):
        bulk.finish()
    assert client.exists(b"t:{u2-0}")  # the first connection's chunks were loaded
    assert client.ping()


def test_a_loader_needs_a_connection(client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="at least one connection"):
        BulkLoader(client, connections=0)


def test_several_connections_write_the_same_snapshot_as_one(client: redis.Redis) -> None:
    rows = [(f"u{i:05d}", f"r{i % 7}", i % 5 + 1) for i in range(20_000)]
    for version, lanes in (("vone", 1), ("vfour", 4)):
        writer = SnapshotWriter(client, version, chunk_pairs=1000, bulk_connections=lanes)
        writer.write_exposures([state(*rows[:9000]), state(*rows[9000:])])
        assert (writer.summary.users, writer.summary.pairs) == (20_000, 20_000)
    for user in ("u00000", "u08999", "u09000", "u19999"):
        one = client.hgetall(keys.user_exposures("vone", user))
        assert one and one == client.hgetall(keys.user_exposures("vfour", user))
    assert len(list(client.scan_iter(match=keys.version_pattern("vfour")))) == 20_001  # + meta


def test_a_write_that_fails_between_chunks_flips_nothing_and_keeps_no_connection(
    client: redis.Redis,
) -> None:
    write(client, "vold", ("u1", "r1", 1))

    def batches() -> Iterator[pa.RecordBatch]:
        yield state(*[(f"u{i}", "r1", 1) for i in range(5000)])
        raise OSError("the state file could not be read")

    writer = SnapshotWriter(client, "vnew", chunk_pairs=500, bulk_connections=3)
    with pytest.raises(OSError, match="could not be read"):
        writer.write_exposures(batches())
    assert current_version(client) == "vold"
    assert client.connection_pool._in_use_connections == set()
    assert client.ping()
