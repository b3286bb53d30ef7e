"""The sparse accumulation of shared gram weights: the same sums, bit for bit, and the same
order as a dense (text x document) accumulation, however the texts are sliced, in any thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import matching.scoring as scoring
from matching import LibraryEntry, Matcher
from tests.fixtures.matching import LIBRARY, UNRELATED

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def dense_reference(
    text: np.ndarray, doc: np.ndarray, w: np.ndarray, n_texts: int, n_docs: int
) -> Arrays:
    """Sum per (text, doc) cell over a dense table; cells in the order of their last posting."""
    cell = text * n_docs + doc
    acc = np.bincount(cell, weights=w, minlength=n_texts * n_docs)
    last = {c: i for i, c in enumerate(cell.tolist())}
    order = sorted(last, key=last.get)
    cells = np.array(order, dtype=np.int64)
    return cells // n_docs, cells % n_docs, acc[cells]


def postings(seed: int, n_texts: int, n_docs: int, n: int) -> Arrays:
    rng = np.random.default_rng(seed)
    text = np.sort(rng.integers(0, n_texts, n))
    doc = rng.integers(0, n_docs, n)
    w = rng.random(n).astype(np.float32) * 5
    return text, doc, w


@pytest.mark.parametrize("slot_cells", [1, 7, 50, 1 << 21])
def test_sums_and_order_equal_a_dense_accumulation_for_any_slicing(
    monkeypatch: pytest.MonkeyPatch, slot_cells: int
) -> None:
    monkeypatch.setattr(scoring, "SLOT_CELLS", slot_cells)
    for seed in range(5):
        args = (*postings(seed, 9, 11, 400), 12, 11)  # text 11 has no postings
        got = scoring._intersections(*args)
        want = dense_reference(*args)
        for g, x in zip(got, want, strict=True):
            assert np.array_equal(g, x)
        assert got[2].tobytes() == want[2].tobytes()  # bit for bit


def test_no_postings_give_no_pairs() -> None:
    empty = np.zeros(0, np.int64)
    t, d, w = scoring._intersections(empty, empty, np.zeros(0, np.float32), 3, 10)
    assert len(t) == len(d) == len(w) == 0


def test_a_stale_scratch_table_from_a_bigger_call_does_not_leak_into_the_next() -> None:
    big = postings(1, 40, 1000, 5000)
    small = postings(2, 3, 1000, 50)
    scoring._intersections(*big, 40, 1000)
    got = scoring._intersections(*small, 3, 1000)
    want = dense_reference(*small, 3, 1000)
    for g, x in zip(got, want, strict=True):
        assert np.array_equal(g, x)


def test_matches_are_the_same_from_many_threads_at_once() -> None:
    library = [*LIBRARY, LibraryEntry("r6", "明天全市停水停电，赶紧囤水", ("停水", "停电"))]
    matcher = Matcher().build(library)
    texts = [e.claim for e in library] + UNRELATED + ["转发：" + e.claim[:12] for e in library]
    want = matcher.match_batch(texts, k=3)
    results: list[object] = []

    def work() -> None:
        for _ in range(30):
            results.append(matcher.match_batch(texts, k=3))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 120 and all(r == want for r in results)


def test_hash_lookup_finds_what_a_binary_search_finds() -> None:
    from matching.index import hash_slots, probe

    rng = np.random.default_rng(7)
    for n in (0, 1, 3, 1000, 50_000):
        vocab = np.unique(rng.integers(0, 1 << 60, n, dtype=np.uint64))
        asked = np.concatenate([vocab[::-1], rng.integers(0, 1 << 60, 500, dtype=np.uint64)])
        found = probe(hash_slots(vocab), vocab, asked)
        at = np.minimum(np.searchsorted(vocab, asked), max(len(vocab) - 1, 0))
        held = (vocab[at] == asked) if len(vocab) else np.zeros(len(asked), dtype=bool)
        assert np.array_equal(found, np.where(held, at, -1))
