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


def test_a_tag_score_below_one_rides_as_one_trailing_byte() -> None:
    """Codec 1 and 2 values (and live ones) carry round(score * 255) in one byte more; a hand
    tag's 1.0 adds nothing, so old values read as 1.0 and keep their bytes."""
    from feature_store.codecs import pack_live_exposure, unpack_live_exposure

    plain = pack_exposure(1, 2, 3, 1, 1)
    assert pack_exposure(1, 2, 3, 1, 1, tag_score=1.0) == plain
    assert unpack_exposure("r1", plain).tag_score == 1.0
    raw = pack_exposure(1, 2, 3, 1, 1, tag_score=0.87)
    assert raw == plain + bytes((222,))
    assert unpack_exposure("r1", raw).tag_score == pytest.approx(0.87, abs=0.5 / 255)
    scored = pack_exposure(1, 2, 3, 1, 1, (0.5,), tag_score=0.0)
    assert len(scored) == 33
    assert unpack_exposure("r1", scored)[6:] == ((0.5,), 0.0)
    assert len(pack_exposure(1, 2, 3, 1, 1, tag_score=7.0)) == 15  # clipped to 1.0
    live = pack_live_exposure(raw, 42)
    assert len(live) == 24 and len(pack_live_exposure(plain, 42)) == 23
    state, stamp = unpack_live_exposure("r1", live)
    assert stamp == 42 and state.tag_score == unpack_exposure("r1", raw).tag_score
    assert unpack_live_exposure("r1", pack_live_exposure(plain, 42))[0].tag_score == 1.0
    with pytest.raises(ValueError):
        unpack_exposure("r1", raw + b"\x00")  # no second trailing byte


def test_the_vectorised_writers_pack_the_tag_score_byte_as_pack_exposure_does() -> None:
    """Snapshot and live values built for a batch are pack_exposure's bytes, row by row: a
    trailing byte only where the tag score is below 1.0 (a null score is 1.0)."""
    from datetime import UTC, datetime

    import numpy as np
    import pyarrow as pa

    from feature_store.codecs import pack_live_exposure
    from feature_store.live_exposures import live_values
    from feature_store.snapshots import _pack_states, tag_score_bytes, with_tag_scores

    ts = datetime(2026, 10, 1, tzinfo=UTC)
    batch = pa.record_batch(
        {"exposures": pa.array([1, 2, 3], pa.int64()), "first_ts": [ts] * 3,
         "last_ts": [ts] * 3, "strongest_action": ["click", "share", "impression"],
         "surface_mask": pa.array([1, 2, 4], pa.int16()),
         "tag_score": pa.array([1.0, 0.87, None], pa.float32())}
    )  # fmt: skip
    packed = _pack_states(batch)
    values = with_tag_scores(packed.view(np.uint8).reshape(3, -1), tag_score_bytes(batch))
    stamp = int(ts.timestamp())
    want = [
        pack_exposure(n, stamp, stamp, a, m, tag_score=float(s))
        for n, a, m, s in ((1, 1, 1, 1.0), (2, 4, 2, np.float32(0.87)), (3, 0, 4, 1.0))
    ]
    assert values.to_pylist() == want
    live = live_values(pa.Table.from_batches([batch]), 42)
    assert live.to_pylist() == [pack_live_exposure(w, 42) for w in want]
    whole = with_tag_scores(packed.view(np.uint8).reshape(3, -1), np.full(3, 255, np.uint8))
    assert whole.type == pa.binary(15)  # no score below 1.0: the fixed-size values of before
