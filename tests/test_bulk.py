"""The bulk HSET loader: exact protocol bytes, replies counted, errors surfaced."""

from __future__ import annotations

import pyarrow as pa
import pytest
import redis

from feature_store.bulk import BulkConnection, BulkLoadError, hset_payload


def test_payload_is_one_hset_per_user_with_exact_bytes() -> None:
    payload, n = hset_payload(
        b"dbk:v:1:u:",
        pa.array(["u1", "u1", "u2"]),
        pa.array(["r1", "r2", "r1"]),
        pa.array([b"a", b"bc", b"\r\n"]),
    )
    assert n == 2
    assert payload == (
        b"*6\r\n$4\r\nHSET\r\n$14\r\ndbk:v:1:u:{u1}\r\n$2\r\nr1\r\n$1\r\na\r\n$2\r\nr2\r\n$2\r\nbc\r\n"
        b"*4\r\n$4\r\nHSET\r\n$14\r\ndbk:v:1:u:{u2}\r\n$2\r\nr1\r\n$2\r\n\r\n\r\n"
    )


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
