"""The three methods the search evaluation compares, behind one interface: top-1 library rumor
and its score for each query.

- ``MatcherRetriever``: our matcher (``matching.Matcher``), through its public API only, so the
  evaluation keeps working while the matcher's internals change;
- ``Bm25Retriever``: BM25 (``bm25s``, Lucene variant, k1=1.5, b=0.75) over jieba word tokens;
- ``TfidfRetriever``: TF-IDF character 2-3-gram cosine (raw counts, smoothed idf, l2 norm), the
  plain baseline the issue measured us against.

Ties are broken towards the lower library index (the library is sorted by post_id), so every
method is deterministic.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from matching import LibraryEntry, Matcher

_TOKEN = re.compile(r"\w", re.UNICODE)


class Retriever(Protocol):
    """Anything that names the best library rumor for each query."""

    name: str

    def top1(self, queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Library index (-1 for none) and score of the best rumor for each query."""
        ...


def fold(text: str) -> str:
    """NFKC, case-folded, runs of whitespace made one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


class MatcherRetriever:
    """Our matcher over the library; the score is the matcher's own (0..1)."""

    name = "matcher"

    def __init__(
        self, library: Sequence[LibraryEntry], matcher: Matcher | None = None, name: str = "matcher"
    ) -> None:
        self.name = name
        self.matcher = (matcher or Matcher()).build(list(library))
        self.index_of = {e.rumor_id: i for i, e in enumerate(library)}

    @property
    def service_thresholds(self) -> dict[str, float]:
        """Per family, the score at or above which the service answers: SearchTop a search
        (``thresholds.search``), GroupWarnings and the auto-tagger posted text (``.high``)."""
        t = self.matcher.thresholds
        return {"search": float(t.search), "text": float(t.high)}

    def top1(self, queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        pred = np.full(len(queries), -1, dtype=np.int64)
        score = np.zeros(len(queries))
        for q, matches in enumerate(self.matcher.match_batch(list(queries), k=3)):
            if matches:
                best = max(m.score for m in matches)
                pred[q] = min(self.index_of[m.rumor_id] for m in matches if m.score == best)
                score[q] = best
        return pred, score


def jieba_tokens(text: str) -> list[str]:
    """jieba words of the folded text, punctuation and spaces dropped."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return [t for t in jieba.lcut(fold(text)) if _TOKEN.search(t)]


class Bm25Retriever:
    """BM25 over jieba tokens (bm25s); unknown query words are ignored."""

    name = "bm25"

    def __init__(self, library: Sequence[LibraryEntry]) -> None:
        import bm25s

        self.model = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
        self.model.index([jieba_tokens(e.claim) for e in library], show_progress=False)
        self.vocab = self.model.vocab_dict
        self.size = len(library)

    def top1(self, queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        pred = np.full(len(queries), -1, dtype=np.int64)
        score = np.zeros(len(queries))
        for q, text in enumerate(queries):
            tokens = [t for t in jieba_tokens(text) if t in self.vocab]
            if not tokens:
                continue
            s = np.asarray(self.model.get_scores(tokens), dtype=np.float64)
            best = int(np.argmax(s))  # the first (lowest index) of equal scores
            if s[best] > 0:
                pred[q], score[q] = best, float(s[best])
        return pred, score


def char_grams(text: str) -> list[str]:
    """Character 2- and 3-grams of the folded text."""
    t = fold(text)
    return [t[i : i + n] for n in (2, 3) for i in range(len(t) - n + 1)]


class TfidfRetriever:
    """TF-IDF character 2-3-gram cosine, fitted on the library."""

    name = "tfidf"

    def __init__(self, library: Sequence[LibraryEntry]) -> None:
        self.vocab: dict[str, int] = {}
        counts = self._counts([e.claim for e in library], grow=True)
        df = np.bincount(counts.indices, minlength=len(self.vocab))
        self.idf = np.log((1 + len(library)) / (1 + df)) + 1.0
        self.docs = self._weigh(counts)

    def _counts(self, texts: Sequence[str], grow: bool) -> sp.csr_matrix:
        rows, cols = [], []
        for r, text in enumerate(texts):
            for g in char_grams(text):
                c = self.vocab.setdefault(g, len(self.vocab)) if grow else self.vocab.get(g)
                if c is not None:
                    rows.append(r)
                    cols.append(c)
        m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(self.vocab)))
        m.sum_duplicates()
        return m

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        w = counts.multiply(self.idf[np.newaxis, :]).tocsr()
        norm = np.sqrt(np.asarray(w.multiply(w).sum(axis=1)).ravel())
        norm[norm == 0] = 1.0
        return sp.diags(1.0 / norm) @ w

    def top1(self, queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        cos = (self._weigh(self._counts(queries, grow=False)) @ self.docs.T).toarray()
        pred = np.argmax(cos, axis=1).astype(np.int64)  # the first of equal scores
        score = cos[np.arange(len(queries)), pred] if len(queries) else np.zeros(0)
        pred[score <= 0] = -1
        return pred, np.clip(score, 0.0, 1.0)
