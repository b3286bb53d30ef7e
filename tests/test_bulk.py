"""The bulk HSET loader: payloads streamed, replies counted, errors surfaced (the payload bytes
are pinned in test_encoding)."""

from __future__ import annotations

import pyarrow as pa
import pytest
import redis

from feature_store.bulk import BulkConnection, BulkLoadError
from feature_store.transport.encoding import hset_payload


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
