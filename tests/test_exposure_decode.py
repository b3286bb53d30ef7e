"""Exposure hashes decoded in C (feature_store/_expdecode.c) against the Python reference
(``codecs.unpack_exposure`` per field): the same states, in the same order, for both codecs,
with and without a tag-score byte, any logits count, and the same errors for bad values."""

from __future__ import annotations

import math
import random
import struct

import pytest

from domain.records import ExposureState
from feature_store import codecs
from feature_store.codecs import pack_exposure, unpack_exposures, unpack_exposures_python


def _same(a: list[ExposureState], b: list[ExposureState]) -> bool:
    """Equal states, NaN logits included (bit for bit)."""
    pack = struct.Struct("<d").pack
    return [(*s[:6], [pack(x) for x in s.logits], s.tag_score) for s in a] == [
        (*s[:6], [pack(x) for x in s.logits], s.tag_score) for s in b
    ]


@pytest.mark.parametrize("seed", range(5))
def test_c_decoder_gives_the_reference_states(seed: int) -> None:
    assert codecs._expdecode is not None, "the install builds the C decoder (setup.py)"
    rng = random.Random(seed)
    for _ in range(300):
        raw = {}
        for j in range(rng.randint(0, 40)):
            logits = tuple(rng.choice([rng.gauss(0, 3), math.nan, 1e30])
                           for _ in range(rng.choice([0, 0, 1, 2, 4])))  # fmt: skip
            value = pack_exposure(rng.randrange(2**32), rng.randrange(2**32), rng.randrange(2**32),
                                  rng.randrange(5), rng.randrange(64), logits,
                                  rng.choice([1.0, rng.random(), 0.0]))  # fmt: skip
            raw[f"r{j}-谣言".encode()] = value
        assert _same(unpack_exposures(raw), unpack_exposures_python(raw))


def test_bad_values_fail_alike() -> None:
    good = pack_exposure(1, 2, 3, 1, 1)
    two = pack_exposure(1, 2, 3, 1, 1, (0.5,))
    for bad in (b"", good[:-1], b"\x03" + good[1:], b"\x02" + good[1:], two + b"xx",
                b"\x01" + two[1:]):  # fmt: skip
        raw = {b"r1": good, b"r2": bad}
        with pytest.raises(ValueError) as c_error:
            unpack_exposures(raw)
        with pytest.raises(ValueError) as py_error:
            unpack_exposures_python(raw)
        assert str(c_error.value) == str(py_error.value)
    with pytest.raises(UnicodeDecodeError):
        unpack_exposures({b"\xff": good})
    with pytest.raises(UnicodeDecodeError):
        unpack_exposures_python({b"\xff": good})


def test_more_logits_than_slots_are_cut_as_the_reference() -> None:
    value = bytearray(pack_exposure(1, 2, 3, 1, 1, (0.1, 0.2, 0.3, 0.4)))
    value[15] = 9  # a count above the slots: both keep the four slots
    raw = {b"r1": bytes(value)}
    assert _same(unpack_exposures(raw), unpack_exposures_python(raw))
    assert len(unpack_exposures(raw)[0].logits) == 4
