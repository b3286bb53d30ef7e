"""The key layout: exact bytes, and IDs that could address another key are refused."""

import random

import pytest

from domain.ids import all_valid_ids, valid_id
from feature_store import keys


def test_pointer_and_registry_share_one_hash_tag() -> None:
    assert keys.CURRENT == b"dbk:{snap}:current"
    assert keys.VERSIONS == b"dbk:{snap}:versions"
    assert keys.WRITING == b"dbk:{snap}:writing"


def test_snapshot_keys_have_exact_bytes() -> None:
    v = "20261007T010203000004"
    assert keys.meta(v) == b"dbk:v:20261007T010203000004:meta"
    assert keys.rumors(v) == b"dbk:v:20261007T010203000004:rumors"
    assert keys.debunks(v) == b"dbk:v:20261007T010203000004:debunks"
    assert keys.user_exposures(v, "u00000042") == b"dbk:v:20261007T010203000004:u:{u00000042}"
    assert keys.version_pattern(v) == b"dbk:v:20261007T010203000004:*"
    assert keys.model(v) == b"dbk:v:20261007T010203000004:model"
    assert keys.user_model(v, "u00000042") == b"dbk:v:20261007T010203000004:m:{u00000042}"


@pytest.mark.parametrize(
    "bad",
    ["", "a}b", "{u1}", "u 1", "u*", "u?", "u[1]", "ü", "u\n1", "x" * 129, "u\x00"],
)
def test_user_ids_that_could_escape_their_key_are_refused(bad: str) -> None:
    with pytest.raises(keys.InvalidId):
        keys.user_exposures("v1", bad)
    with pytest.raises(keys.InvalidId):
        keys.user_model("v1", bad)
    with pytest.raises(keys.InvalidId):
        keys.feed_keys("v1", ["u1", bad], "20261007")


def test_a_feed_read_touches_exactly_the_keys_of_the_single_key_functions() -> None:
    v, day = "20261007T010203000004", "20261007"
    assert keys.feed_keys(v, ["u00000042"], day) == [
        (
            b"dbk:v:20261007T010203000004:u:{u00000042}",
            b"dbk:dlv:{u00000042}",
            b"dbk:cap:{u00000042}:20261007",
            b"dbk:v:20261007T010203000004:m:{u00000042}",
        )
    ]
    users = ["a.b-c_d@e:f", "YWJj+/=", "x" * 128]
    assert keys.feed_keys(v, users, day) == [
        (keys.user_exposures(v, u), keys.delivery(u), keys.daily_caps(u, day),
         keys.user_model(v, u))
        for u in users
    ]  # fmt: skip
    with pytest.raises(keys.InvalidId, match="YYYYMMDD"):
        keys.feed_keys(v, ["u1"], "2026-10-07")
    live = keys.feed_keys(v, users, day, live=True)
    assert [row[4] for row in live] == [keys.live_exposures(u) for u in users]
    assert keys.live_exposures("u1").startswith(keys.live_exposures_prefix())
    with pytest.raises(keys.InvalidId):
        keys.live_exposures("u{1}")


@pytest.mark.parametrize("good", ["u00000001", "1234567890", "a.b-c_d@e:f", "YWJj+/=", "x" * 128])
def test_ordinary_ids_are_accepted_unchanged(good: str) -> None:
    assert keys.check_id(good) == good


@pytest.mark.parametrize("bad", ["", "v:1", "v{1}", "v 1", "v*", "x" * 65])
def test_versions_are_checked(bad: str) -> None:
    with pytest.raises(keys.InvalidId):
        keys.meta(bad)


def test_error_message_says_what_is_wrong() -> None:
    with pytest.raises(keys.InvalidId, match="user_id is longer than 128"):
        keys.check_id("x" * 200, "user_id")


def test_event_id_keys_share_their_writes_hash_tags() -> None:
    assert keys.event_applied("u1", "e-1") == b"dbk:evt:{u1}:e-1"
    assert keys.delivery("u1").split(b"{")[1].split(b"}")[0] == b"u1"  # same slot as delivery
    assert keys.event_streamed("e-1") == b"dbk:{events}:seen:e-1"
    assert keys.EVENTS.startswith(b"dbk:{events}:")  # same slot as the stream
    with pytest.raises(keys.InvalidId):
        keys.event_applied("u1", "e}1")


def test_outbox_keys_share_one_hash_tag_and_no_two_pairs_share_a_marker() -> None:
    assert keys.OUTBOX == b"dbk:{outbox}:stream"
    assert keys.OUTBOX_EXPORTED == b"dbk:{outbox}:exported"
    assert keys.notified("u1", "r1") == b"dbk:{outbox}:sent:u1,r1"
    assert keys.notified("a:b", "c") != keys.notified("a", "b:c")  # ids may hold a colon
    with pytest.raises(keys.InvalidId):
        keys.notified("u1", "r1,u2")
    with pytest.raises(keys.InvalidId):
        keys.notified("u}1", "r1")


@pytest.mark.parametrize(
    "bad",
    ["", "a}b", "{u1}", "u 1", "u*", "u?", "u[1]", "ü", "u\n1", "\n", "x" * 129, "u\x00", None],
)
def test_a_batch_with_one_bad_id_anywhere_is_refused(bad: object) -> None:
    for at in (0, 1, 2):
        values = ["u1", "u2"]
        values.insert(at, bad)
        assert not all_valid_ids(values)
    assert not all_valid_ids([bad])
    assert all_valid_ids([]) and all_valid_ids(["u1", "x" * 128, "a.b-c_d@e:f"])


def test_the_batch_check_agrees_with_the_one_id_check() -> None:
    rng = random.Random(7)
    alphabet = "ab1_.@:+/=-{} *?\n\x00üx"
    for _ in range(2000):
        values = [
            "".join(rng.choices(alphabet, k=rng.randint(0, 6))) for _ in range(rng.randint(0, 4))
        ]
        assert all_valid_ids(values) == all(valid_id(v) for v in values), values
