"""The faster formulations of the scorer's steps and of the offline tagger give what the plain
ones give, bit for bit: each against a straightforward reference on seeded random inputs with
many ties, and the tagger's one-score-per-distinct-text against scoring every text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import matching.scoring as scoring
from matching import LibraryEntry, Matcher
from matching.grams import word_id, word_ids
from matching.index import IndexParams
from offline.nightly.match import distinct, match_items, spread
from tests.fixtures.matching import LIBRARY, UNRELATED


def top_reference(t: np.ndarray, d: np.ndarray, key: np.ndarray, k: int, floor: float) -> list:
    """Per text: its cells reaching ``floor`` x its best key, best key first, ties by lower d,
    the first ``k``; the chosen positions in input order."""
    chosen = []
    for text in np.unique(t).tolist():
        rows = np.flatnonzero(t == text)
        best = key[rows].max()
        rows = [i for i in rows.tolist() if key[i] >= floor * best]
        rows.sort(key=lambda i: (-key[i], d[i]))
        chosen += rows[:k]
    return sorted(chosen)


@pytest.mark.parametrize("seed", range(6))
def test_top_per_text_is_the_sorted_top_k_with_ties_by_document(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    t = np.sort(rng.integers(0, 40, n))
    d = rng.integers(0, 70_000 if seed % 2 else 500, n)  # wide ids: the unnarrowed path too
    key = rng.integers(0, 12, n).astype(np.float64) / 4  # few distinct keys: many ties
    for k, floor in ((1, 0.0), (5, 0.25), (20, 0.5)):
        got = scoring._top_per_text(t, d, key, k, floor)
        assert got.tolist() == top_reference(t, d, key, k, floor)


def test_expand_lists_every_posting_of_each_gram() -> None:
    matcher = Matcher(index_params=IndexParams(rare_min=10**6)).build(LIBRARY)
    index = matcher.index
    assert index is not None
    gi = np.array([3, 0, 3, len(index.vocab) - 1, 1], dtype=np.int64)
    rep, docs, sat = scoring._expand(index, gi)
    want = [(r, p) for r, g in enumerate(gi.tolist()) for p in range(*index.indptr[g : g + 2])]
    assert len(want) > len(gi) and rep.tolist() == [r for r, _ in want]
    assert docs.tolist() == index.postings[[p for _, p in want]].tolist()
    assert sat.tobytes() == index.saturation[[p for _, p in want]].tobytes()
    assert [len(x) for x in scoring._expand(index, gi[:0])] == [0, 0, 0]


def test_common_shared_sums_what_the_bit_table_says_each_document_holds() -> None:
    matcher = Matcher(index_params=IndexParams(rare_min=0, rare_frac=0.0)).build(LIBRARY)
    index = matcher.index
    assert index is not None
    bits = np.unpackbits(index.common_bits, axis=1).astype(bool)
    rng = np.random.default_rng(3)
    n_common = int((index.common_rank >= 0).sum())
    owner = np.sort(rng.integers(0, 5, 60))
    rank = rng.integers(0, n_common, 60).astype(np.int32)
    w = rng.random(60)
    t = np.array([0, 0, 2, 3, 3, 3, 4], dtype=np.int64)
    d = rng.integers(0, len(index.doc_norm), len(t))
    (got,) = scoring._common_shared(index, t, d, owner, rank, (w,), 5)
    held = missed = 0
    for cell, (text, doc) in enumerate(zip(t.tolist(), d.tolist(), strict=True)):
        own = np.flatnonzero(owner == text).tolist()
        grams = [g for g in own if bits[doc, rank[g]]]
        held, missed = held + len(grams), missed + len(own) - len(grams)
        want = np.bincount(np.zeros(len(grams), np.int64), weights=w[grams], minlength=1)[0]
        assert got[cell].tobytes() == np.float64(want).tobytes()
    assert held and missed  # the bits said yes to some grams and no to others


def test_word_ids_are_the_stable_ids_whatever_the_table_holds() -> None:
    words = ["宁波", "停水", "宁波", "samsung", "停水", "新词甲乙"] * 3
    assert word_ids(words) == [word_id(w) for w in words]
    assert word_ids([]) == []


def test_distinct_texts_spread_back_to_every_position() -> None:
    matcher = Matcher().build(LIBRARY)
    texts = [e.claim for e in LIBRARY] + UNRELATED
    many = [texts[i] for i in np.random.default_rng(5).integers(0, len(texts), 200)]
    many += [None, "", many[0]]
    unique, inverse = distinct(many)
    assert len(unique) < len(many) and [unique[i] for i in inverse.tolist()] == many
    got = spread(matcher.top(unique, 3), inverse, len(unique))
    want = matcher.top(many, 3)
    for g, x in zip(
        (got.text, got.rumor, got.score), (want.text, want.rumor, want.score), strict=True
    ):
        assert g.dtype == x.dtype and g.tobytes() == x.tobytes()
    assert len(want.text) > 0


def test_match_items_with_repeated_texts_tags_each_item() -> None:
    library = [*LIBRARY, LibraryEntry("r6", "明天全市停水停电，赶紧囤水", ("停水", "停电"))]
    claim = library[0].claim
    items = pa.table(
        {"item_id": ["a", "b", "c", "d"], "text": [claim, "今天天气很好", claim, None]}
    )
    tags, _ = match_items(items, library)
    alone, _ = match_items(items.slice(2, 1), library)
    assert tags.column("item_id").to_pylist() == ["a", "c"]
    assert tags.slice(1).column("score").equals(alone.column("score"))
