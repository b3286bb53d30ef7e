"""The inverted index over library documents: gram vocabulary, idf weights, postings (CSR)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matching.grams import batch_grams

BUILD_CHUNK = 4096


@dataclass(frozen=True)
class Index:
    """Sorted gram ids, their weights and postings; per-document weight totals and owners."""

    vocab: np.ndarray  # uint64, sorted
    weight: np.ndarray  # float32 per gram; 0 for stop grams (too common to discriminate)
    indptr: np.ndarray  # int64, len(vocab) + 1
    postings: np.ndarray  # int32 document ids, grouped by gram
    doc_norm: np.ndarray  # float32: total weight of each document's grams
    doc_rumor: np.ndarray  # int32
    doc_kind: np.ndarray  # int8
    unknown_weight: float  # weight of a gram absent from the library

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        arrays = (self.vocab, self.weight, self.indptr, self.postings, self.doc_norm)
        return sum(a.nbytes for a in arrays) + self.doc_rumor.nbytes + self.doc_kind.nbytes


def _doc_grams(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(document, gram) pairs of all documents, built in chunks."""
    docs, grams = [], []
    for lo in range(0, len(texts), BUILD_CHUNK):
        owner, g = batch_grams(texts[lo : lo + BUILD_CHUNK])
        docs.append((owner + lo).astype(np.int32))
        grams.append(g)
    if not docs:
        return np.zeros(0, np.int32), np.zeros(0, np.uint64)
    return np.concatenate(docs), np.concatenate(grams)


def build_index(
    texts: list[str], doc_rumor: list[int], doc_kind: list[int], n_rumors: int, max_df: float
) -> Index:
    """Index ``texts``; grams found in more than ``max_df`` of the rumors (and in more than 50)
    get weight 0 and no postings."""
    docs, grams = _doc_grams(texts)
    vocab, gidx = np.unique(grams, return_inverse=True)
    rumor = np.asarray(doc_rumor, dtype=np.int32)
    pair = np.unique(gidx.astype(np.int64) * max(n_rumors, 1) + rumor[docs])
    df = np.bincount(pair // max(n_rumors, 1), minlength=len(vocab))
    n = max(n_rumors, 1)
    weight = np.log1p(n / np.maximum(df, 1)).astype(np.float32)
    stop = df > max(50, max_df * n)
    weight[stop] = 0.0
    keep = ~stop[gidx]
    order = np.argsort(gidx[keep], kind="stable")
    postings = docs[keep][order]
    counts = np.bincount(gidx[keep], minlength=len(vocab))
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    doc_norm = np.bincount(docs, weights=weight[gidx], minlength=len(texts)).astype(np.float32)
    return Index(
        vocab=vocab,
        weight=weight,
        indptr=indptr,
        postings=postings.astype(np.int32),
        doc_norm=doc_norm,
        doc_rumor=rumor,
        doc_kind=np.asarray(doc_kind, dtype=np.int8),
        unknown_weight=float(np.log1p(n)),
    )
