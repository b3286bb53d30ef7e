"""The C row scan of the id prefilter (offline.join._idscan) keeps exactly the rows numpy keeps."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from offline.join import idfilter
from offline.join.idfilter import IdFilter
from tests.fixtures.ids import ADVERSARIAL, noise

needs_c = pytest.mark.skipif(idfilter._idscan is None, reason="offline.join._idscan is not built")


def test_the_c_scan_is_built() -> None:
    """`make test` builds the extension; without it the join falls back to numpy, ~20 ns a row
    slower, so a failed build should not pass unnoticed."""
    assert idfilter._idscan is not None, "offline.join._idscan missing: run `pip install -e .`"


def _both(prefilter: IdFilter, ids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate rows by the C scan and by numpy, checked against the numpy mask too."""
    native = prefilter.candidate_rows(ids)
    fallback = prefilter.candidate_rows(ids, native=False)
    assert np.array_equal(fallback, np.flatnonzero(prefilter.candidates(ids)))
    assert native.dtype == fallback.dtype == np.int64
    return native, fallback


@needs_c
@pytest.mark.parametrize("kind", [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()])
@pytest.mark.parametrize("seed", range(3))
def test_c_and_numpy_keep_the_same_rows(kind: pa.DataType, seed: int) -> None:
    rng = random.Random(seed)
    pool = ADVERSARIAL + noise(3000, seed)
    members = pa.array(sorted(set(rng.sample(pool, 300)) - {""})).cast(kind)
    prefilter = IdFilter.build(members)
    probe = [rng.choice(pool) for _ in range(4000)] + [None, "", None]
    rng.shuffle(probe)
    whole = pa.array(["pad"] * 3 + probe).cast(kind)[3:]  # sliced: offsets do not start at 0
    native, fallback = _both(prefilter, whole)
    assert np.array_equal(native, fallback)
    chunked = pa.chunked_array([whole[:1001], whole[1001:1002], whole[1002:]])
    assert np.array_equal(*_both(prefilter, chunked))
    assert np.array_equal(prefilter.candidate_rows(chunked), native)


@needs_c
def test_c_scan_edge_cases() -> None:
    prefilter = IdFilter.build(pa.array(["abcdefghij", "x"]))
    for ids in [
        pa.array([], pa.string()),
        pa.array([None, None], pa.string()),  # no data buffer worth reading
        pa.array(["", ""]),
        pa.array(["x", "abcdefghij"]),  # "x" ends in the first 8 bytes: unkeyed, a candidate
        pa.array(["zz", "abcdefghij", "x", "yy", "abcdefghik", "abcdefghij"]),
        pa.chunked_array([], pa.string()),
    ]:
        native, fallback = _both(prefilter, ids)
        assert np.array_equal(native, fallback), ids


@needs_c
def test_c_scan_keeps_every_member_and_few_others() -> None:
    members = pa.array([f"i{i:09d}" for i in range(0, 2_000_000, 17)])
    others = pa.array([f"i{i:09d}" for i in range(1, 2_000_000, 17)])
    prefilter = IdFilter.build(members)
    assert np.array_equal(prefilter.candidate_rows(members), np.arange(len(members)))
    assert len(prefilter.candidate_rows(others)) < 0.01 * len(others)


@needs_c
def test_c_scan_rejects_bad_buffers() -> None:
    prefilter = IdFilter.build(pa.array(["abcdefghij"]))
    ids = pa.array(["abcdefghij", "klmnopqrst"])
    validity, offsets, data = ids.buffers()
    out = np.empty(1, dtype=np.int64)  # too small for two rows
    with pytest.raises(ValueError):
        idfilter._idscan.candidate_rows(
            offsets, 4, 0, 2, None, data, prefilter.table, int(prefilter.shift), out
        )
