"""feature_store.transport.encoding, the one RESP encoder: exact bytes of a pipeline, of the
feed read and of bulk HSETs, and the three agree with each other."""

from __future__ import annotations

import pyarrow as pa
import pytest

from feature_store import keys
from feature_store.transport.encoding import (
    as_dict,
    encode,
    feed_commands,
    feed_payload,
    hset_payload,
)


def test_commands_are_encoded_as_one_resp_buffer() -> None:
    assert encode([(b"HGET", "k", b"f"), ("PING",)]) == (
        b"*3\r\n$4\r\nHGET\r\n$1\r\nk\r\n$1\r\nf\r\n*1\r\n$4\r\nPING\r\n"
    )
    assert encode([("SET", "ключ", b"\r\n")]) == (
        b"*3\r\n$3\r\nSET\r\n$8\r\n\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\r\n$2\r\n\r\n\r\n"
    )  # lengths count bytes, and a value may hold CR LF
    assert encode([]) == b""
    assert as_dict([b"a", b"1", b"b", b"2"]) == {b"a": b"1", b"b": b"2"}
    assert as_dict([]) == {} and as_dict(None) == {}


def test_a_feed_read_is_the_four_commands_per_user_in_one_resp_buffer() -> None:
    user_keys = keys.feed_keys("v1", ["u1", "user-22"], "20261007")
    exposures, delivery, caps, model = user_keys[0]
    assert feed_commands(user_keys[:1], "feed") == [
        (b"HGETALL", exposures), (b"HGETALL", delivery), (b"HGET", caps, "feed"),
        (b"HGETALL", model),
    ]  # fmt: skip
    assert feed_payload(user_keys, "feed") == encode(feed_commands(user_keys, "feed"))
    assert feed_payload(user_keys, "search") == encode(feed_commands(user_keys, "search"))
    assert feed_payload(user_keys, "feed").startswith(
        b"*2\r\n$7\r\nHGETALL\r\n$15\r\ndbk:v:v1:u:{u1}\r\n*2\r\n$7\r\nHGETALL\r\n"
    )
    assert feed_payload([], "feed") == b""


def test_a_live_feed_read_adds_the_live_exposure_hash_as_a_fifth_command() -> None:
    user_keys = keys.feed_keys("v1", ["u1", "user-22"], "20261007", live=True)
    *_, live = user_keys[0]
    assert live == keys.live_exposures("u1")
    assert feed_commands(user_keys[:1], "feed")[4] == (b"HGETALL", live)
    assert len(feed_commands(user_keys, "feed")) == 10
    assert feed_payload(user_keys, "feed") == encode(feed_commands(user_keys, "feed"))


@pytest.mark.parametrize("live_days", [("20261007",), ("20261006", "20261007"), ()])
def test_a_feed_read_with_live_days_is_one_hgetall_more_per_day(live_days: tuple) -> None:
    users = ["u1", "user-22", "x" * 128]
    user_keys = keys.feed_keys("v1", users, "20261007", live=True, live_days=live_days)
    assert [row[5:] for row in user_keys] == [
        tuple(keys.live_day(u, d) for d in live_days) for u in users
    ]
    for surface in ("feed", "search", "comment"):
        assert feed_payload(user_keys, surface) == encode(feed_commands(user_keys, surface))
    assert len(feed_commands(user_keys, "feed")) == len(users) * (5 + len(live_days))


def test_bulk_hsets_are_one_per_user_with_exact_bytes() -> None:
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
    assert hset_payload(b"t:", pa.array([], pa.string()), pa.array([]), pa.array([])) == (b"", 0)


def test_bulk_hsets_are_what_encode_gives_for_the_same_commands() -> None:
    users = [f"u{i // 3}" for i in range(30)]
    fields = [f"r{i}" for i in range(30)]
    values = [bytes(range(i % 7 + 1)) * (i + 1) for i in range(30)]
    payload, n = hset_payload(b"p:", pa.array(users), pa.array(fields), pa.array(values))
    expected = [
        (
            b"HSET",
            f"p:{{u{u}}}",
            *[x for i in range(3 * u, 3 * u + 3) for x in (fields[i], values[i])],
        )
        for u in range(10)
    ]
    assert n == 10 and payload == encode(expected)
