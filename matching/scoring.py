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

from dataclasses import dataclass

import numpy as np

from matching.index import Index

DENSE_CELLS = 1 << 18  # (text, doc) cells accumulated at once (2 MB)


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
    order = np.lexsort((-score, rumor, text))
    text, rumor, doc, score = text[order], rumor[order], doc[order], score[order]
    first = np.ones(len(text), dtype=bool)
    first[1:] = (text[1:] != text[:-1]) | (rumor[1:] != rumor[:-1])
    text, rumor, doc, score = text[first], rumor[first], doc[first], score[first]
    order = np.lexsort((rumor, -score, text))
    return PairScores(text[order], rumor[order], doc[order], score[order])


def _intersections(
    text: np.ndarray, doc: np.ndarray, w: np.ndarray, n_texts: int, n_docs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summed weight per (text, doc) pair, without sorting: a dense bincount over slices of
    texts, and the distinct cells found by scattering positions (only touched cells are read)."""
    step = max(1, DENSE_CELLS // max(n_docs, 1))
    bounds = np.searchsorted(text, np.arange(0, n_texts + step, step))
    ts, ds, ws = [], [], []
    slot = np.empty(step * n_docs, dtype=np.int64)
    for i in range(len(bounds) - 1):
        lo, hi = bounds[i], bounds[i + 1]
        if lo == hi:
            continue
        cell = (text[lo:hi] - i * step) * n_docs + doc[lo:hi]
        acc = np.bincount(cell, weights=w[lo:hi])
        pos = np.arange(len(cell))
        slot[cell] = pos
        cell = cell[slot[cell] == pos]
        ts.append(cell // n_docs + i * step)
        ds.append(cell % n_docs)
        ws.append(acc[cell])
    if not ts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
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
