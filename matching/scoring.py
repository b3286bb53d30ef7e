"""Scores of (text, rumor) pairs from shared grams.

For a text T and a library document D with gram weights w (idf; stop grams 0):
- containment  c_d = w(D ∩ T) / w(D): how much of the rumor the text carries; a long post that
  quotes the rumor inside commentary still scores ~1;
- coverage     c_t = w(D ∩ T) / w(T): how much of a short text (a search query, a partial quote)
  is the rumor;
- evidence     e = min(1, w(D ∩ T) / (conf_grams * w_rare)): a match needs ``conf_grams`` rare
  grams' worth of shared text, so a two-word claim ("转起来！") or a two-word post cannot score 1;
- score = max(c_d, c_t) * e for claims and variants; a keyword document (the rumor's keywords)
  scores ``keyword_cap * c_d`` once ``c_d >= keyword_min`` (the keywords are all, or nearly all,
  present), else 0. A rumor scores its best document.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from matching.index import Index

# (text, doc) cells one slice of texts may address: a scratch table of int32 positions kept per
# thread (8 MB of address space, touched only where postings land)
SLOT_CELLS = 1 << 21
_scratch = threading.local()


@dataclass(frozen=True)
class ScoreParams:
    """Knobs of the score (see the module docstring)."""

    conf_grams: float = 12.0
    keyword_cap: float = 0.75
    keyword_min: float = 0.8
    min_score: float = 0.05


@dataclass(frozen=True)
class PairScores:
    """Best document per (text, rumor) pair, sorted by text then descending score."""

    text: np.ndarray
    rumor: np.ndarray
    doc: np.ndarray
    score: np.ndarray


def _expand(index: Index, gi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For gram indices ``gi``: the position in ``gi`` of each posting, and its document."""
    starts = index.indptr[gi]
    lens = index.indptr[gi + 1] - starts
    total = int(lens.sum())
    rep = np.repeat(np.arange(len(gi)), lens)
    offsets = np.cumsum(lens) - lens
    idx = starts[rep] + (np.arange(total, dtype=np.int64) - offsets[rep])
    return rep, index.postings[idx]


def _best_per_rumor(text: np.ndarray, rumor: np.ndarray, doc: np.ndarray, score: np.ndarray):
    """Keep the best document of each (text, rumor), then sort by text and descending score."""
    key = (text.astype(np.int64) << 32) | rumor  # orders as (text, rumor) does
    order = np.lexsort((-score, key))
    key = key[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    best = order[first]
    text, rumor, score = text[best], rumor[best], score[best]
    order = np.lexsort((rumor, -score, text))
    return PairScores(text[order], rumor[order], doc[best[order]], score[order])


def _slot_table(cells: int) -> np.ndarray:
    """This thread's scratch table of at least ``cells`` int32 slots (contents are garbage)."""
    table = getattr(_scratch, "slots", None)
    if table is None or len(table) < cells:
        table = np.empty(cells, dtype=np.int32)
        _scratch.slots = table
    return table


def _intersections(
    text: np.ndarray, doc: np.ndarray, w: np.ndarray, n_texts: int, n_docs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summed weight per (text, doc) pair, without sorting, in the order of each pair's last
    posting (postings come sorted by text).

    Each posting writes its position into its cell of a slot table reused across calls; a
    posting that reads its own position back is its cell's last one. The sums are then a
    bincount over the distinct cells only, each adding its postings in order, so they equal a
    dense accumulation bit for bit while touching memory in proportion to the postings, not to
    texts x documents."""
    n_docs = max(n_docs, 1)
    step = max(1, min(n_texts, SLOT_CELLS // n_docs))
    slot = _slot_table(step * n_docs)
    bounds = np.searchsorted(text, np.arange(0, n_texts + step, step))
    ts, ds, ws = [], [], []
    for i in range(len(bounds) - 1):
        lo, hi = bounds[i], bounds[i + 1]
        if lo == hi:
            continue
        t, d = text[lo:hi], doc[lo:hi]
        cell = (t - i * step) * n_docs + d
        pos = np.arange(hi - lo, dtype=np.int32)
        slot[cell] = pos
        last = slot[cell]
        first = np.flatnonzero(last == pos)  # each cell once, at its last posting
        rank = np.empty(hi - lo, dtype=np.int32)
        rank[first] = np.arange(len(first), dtype=np.int32)
        ts.append(t[first])
        ds.append(d[first])
        ws.append(np.bincount(rank[last], weights=w[lo:hi], minlength=len(first)))
    if not ts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    if len(ts) == 1:
        return ts[0], ds[0], ws[0]
    return np.concatenate(ts), np.concatenate(ds), np.concatenate(ws)


def score_pairs(
    index: Index, owner: np.ndarray, grams: np.ndarray, n_texts: int, params: ScoreParams
) -> PairScores:
    """Scores of every (text, rumor) pair that shares a non-stop gram, best document per pair."""
    empty = np.zeros(0, np.int64)
    if len(index.vocab) == 0 or len(grams) == 0:
        return PairScores(empty, empty, empty, np.zeros(0, np.float32))
    gi = np.minimum(np.searchsorted(index.vocab, grams), len(index.vocab) - 1)
    known = index.vocab[gi] == grams
    w = np.where(known, index.weight[gi], np.float32(index.unknown_weight))
    text_norm = np.bincount(owner, weights=w, minlength=n_texts)
    sel = np.flatnonzero(known & (w > 0))
    rep, docs = _expand(index, gi[sel])
    n_docs = len(index.doc_norm)
    t, d, inter = _intersections(owner[sel][rep], docs, w[sel][rep], n_texts, n_docs)
    c_d = inter / np.maximum(index.doc_norm[d], 1e-9)
    conf = np.minimum(1.0, inter / (params.conf_grams * index.unknown_weight))
    c_t = inter / np.maximum(text_norm[t], 1e-9)
    keyword = index.doc_kind[d] == 2
    kw_score = np.where(c_d >= params.keyword_min, params.keyword_cap * c_d, 0.0)
    score = np.where(keyword, kw_score, np.maximum(c_d, c_t) * conf)
    score = np.clip(score, 0.0, 1.0)
    keep = score >= params.min_score
    rumor = index.doc_rumor[d[keep]].astype(np.int64)
    return _best_per_rumor(t[keep], rumor, d[keep], score[keep].astype(np.float32))
