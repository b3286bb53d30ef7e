"""Value encodings: compact, exact, versioned."""

import math

import pytest

from feature_store.codecs import dump_json, load_json, pack_exposure, unpack_exposure


def test_exposure_state_round_trips_in_15_bytes() -> None:
    raw = pack_exposure(7, 1_759_300_000, 1_759_400_000, 4, 0b101)
    assert len(raw) == 15
    state = unpack_exposure("r000001", raw)
    assert (state.rumor_id, state.exposures, state.first_ts, state.last_ts) == (
        "r000001",
        7,
        1_759_300_000,
        1_759_400_000,
    )
    assert state.strongest_action == 4 and state.surface_mask == 0b101
    assert state.shared


def test_pinned_bytes() -> None:
    assert pack_exposure(1, 2, 3, 1, 1) == bytes.fromhex("010100000002000000030000000101")


def test_unknown_encoding_is_an_error_not_garbage() -> None:
    with pytest.raises(ValueError, match="unknown exposure encoding"):
        unpack_exposure("r1", b"\x02" + b"\x00" * 14)
    with pytest.raises(ValueError):
        unpack_exposure("r1", b"\x01\x00")


def test_json_is_deterministic_and_keeps_chinese_readable() -> None:
    a = dump_json({"b": 1, "a": "辟谣"})
    assert a == '{"a":"辟谣","b":1}'.encode()
    assert load_json(a) == {"a": "辟谣", "b": 1}


def test_exposure_state_with_option_logits_round_trips_in_32_bytes() -> None:
    raw = pack_exposure(7, 1_759_300_000, 1_759_400_000, 4, 0b101, (1.5, float("nan"), -2.0))
    assert len(raw) == 32 and raw[0] == 2
    state = unpack_exposure("r000001", raw)
    assert state[:6] == ("r000001", 7, 1_759_300_000, 1_759_400_000, 4, 0b101)
    assert state.logits[0] == 1.5 and math.isnan(state.logits[1]) and state.logits[2] == -2.0
    assert len(state.logits) == 3
    assert unpack_exposure("r1", pack_exposure(1, 2, 3, 1, 1)).logits == ()
    with pytest.raises(ValueError, match="at most 4"):
        pack_exposure(1, 2, 3, 1, 1, (0.0,) * 5)
    with pytest.raises(ValueError):
        unpack_exposure("r1", raw[:-1])
