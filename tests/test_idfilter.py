"""The id prefilter: keys match their definition, and no member is ever screened out."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from offline.join.idfilter import IdFilter, keys, reference_key
from tests.fixtures.ids import ADVERSARIAL, noise


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string(), pa.binary()])
def test_vectorised_keys_follow_the_reference(kind: pa.DataType) -> None:
    values = ADVERSARIAL + noise(300, 1)
    arr = pa.array(values).cast(kind)
    key, unkeyed = keys(arr)
    for i, v in enumerate(values):
        raw = v.encode()
        if not raw:
            assert unkeyed[i]
        elif not unkeyed[i]:
            assert int(key[i]) == reference_key(raw), v
    # Only empty values and values ending in the buffer's first 8 bytes are unkeyed.
    assert unkeyed.sum() <= sum(1 for v in values if not v) + 8


def test_keys_of_a_sliced_array_with_nulls() -> None:
    values = ["zz", None, "12345678", "", "abcdefghij", None, "q"]
    arr = pa.array(["padding-value"] * 3 + values)[3:]
    key, unkeyed = keys(arr)
    assert list(unkeyed) == [False, True, False, True, False, True, False]
    for i, v in enumerate(values):
        if v:
            assert int(key[i]) == reference_key(v.encode())


@pytest.mark.parametrize("seed", range(5))
def test_no_member_is_ever_dropped(seed: int) -> None:
    rng = random.Random(seed)
    pool = ADVERSARIAL + noise(2000, seed)
    members = sorted(set(rng.sample(pool, 400)) - {""})
    members_array = pa.array(members)
    prefilter = IdFilter.build(members_array)
    probe = [rng.choice(pool) for _ in range(5000)] + [None, ""]
    # Probe as several chunks, each a slice at an odd offset, as batches arrive.
    whole = pa.array(["pad"] + probe)[1:]
    chunked = pa.chunked_array([whole[:1777], whole[1777:4001], whole[4001:]])
    mask = prefilter.candidates(chunked)
    truth = pc.is_in(chunked, value_set=members_array).to_numpy(zero_copy_only=False)
    assert mask.shape == truth.shape
    assert not (truth & ~mask).any(), "a member was screened out"


def test_most_non_members_are_screened_out() -> None:
    members = pa.array([f"i{i:09d}" for i in range(0, 2_000_000, 17)])
    others = pa.array([f"i{i:09d}" for i in range(1, 2_000_000, 17)])
    prefilter = IdFilter.build(members)
    assert prefilter.candidates(members).all()
    assert prefilter.candidates(others).mean() < 0.1


def test_an_empty_set_passes_only_unkeyed_rows() -> None:
    prefilter = IdFilter.build(pa.array([], pa.string()))
    mask = prefilter.candidates(pa.array(["", "abcdefghijk", None, "zzzzzzzzzzzz"]))
    assert list(mask) == [True, False, True, False]


def test_unsupported_types_pass_everything() -> None:
    prefilter = IdFilter.build(pa.array(["a"]))
    ids = pa.array(["a", "b"]).dictionary_encode()
    assert np.array_equal(prefilter.candidates(ids), [True, True])


@pytest.mark.parametrize("width", [8, 10, 23])
def test_keys_of_fixed_width_ids_take_the_strided_path_and_agree(width: int) -> None:
    values = [f"{i:0{width}d}" for i in range(50)] + ["日" * (width // 3) + "x" * (width % 3)]
    arr = pa.array(["w" * width] * 5 + values)[5:]  # a slice: offsets do not start at 0
    key, unkeyed = keys(arr)
    assert not unkeyed.any()
    assert [int(k) for k in key] == [reference_key(v.encode()) for v in values]


def test_two_probes_screen_out_almost_every_non_member() -> None:
    """Ids that differ only in their digits (as item ids do) spread over both probes."""
    members = pa.array([f"i{i:09d}" for i in range(0, 2_000_000, 17)])
    others = pa.array([f"i{i:09d}" for i in range(1, 2_000_000, 3) if i % 17])
    prefilter = IdFilter.build(members)
    assert prefilter.candidates(others).mean() < 0.01
