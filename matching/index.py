"""The index over library documents: gram vocabulary, BM25 idf, postings for rare grams and a
bit table for common ones.

A document is a claim or a known variant; the rumor's keywords and aliases (``expansion``) are
added to each of its documents as extra grams: they count as shared evidence when a text holds
them, but not in the document's own size (a rumor with many aliases is not harder to contain).

- idf is BM25's, ``ln(1 + (N - df + 0.5) / (df + 0.5))``, with df counted over rumors;
- each (gram, document) pair carries BM25's saturation
  ``tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))``;
- a gram held by at most ``rare_df`` rumors has postings (the candidates come from them); a more
  common one (mostly single characters) is a bit in a per-document table, looked up only for a
  text's candidate documents, with the saturation of tf = 1 (``doc_unit``). Dropping common
  grams outright cost 20-40 points of recall on paraphrases: they carry a retelling's evidence
  in aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from matching.grams import PAIR_BIT, WORD_BASE, batch_grams
from matching.places import document_masks

BUILD_CHUNK = 4096


@dataclass(frozen=True)
class IndexParams:
    """BM25 constants and where postings stop (see the module docstring)."""

    k1: float = 1.2
    b: float = 0.75
    rare_min: int = 50  # a gram held by at most max(rare_min, rare_frac * N) rumors is rare
    rare_frac: float = 0.002


@dataclass(frozen=True)
class Index:
    """Sorted gram ids, idf, postings of rare grams, the common-gram bit table, per-document
    norms and owners."""

    vocab: np.ndarray  # uint64, sorted
    idf: np.ndarray  # float32 per gram
    indptr: np.ndarray  # int64, len(vocab) + 1 (common grams have empty posting lists)
    postings: np.ndarray  # int32 document ids, grouped by gram
    saturation: np.ndarray  # float32 per posting
    common_rank: np.ndarray  # int32 per gram: its column in ``common_bits``, -1 if rare
    common_bits: np.ndarray  # uint8 (documents, ceil(common / 8)), np.packbits order
    doc_norm: np.ndarray  # float32: idf total of each document's own grams
    doc_word_norm: np.ndarray  # float32: idf total of each document's own words and pairs
    doc_unit: np.ndarray  # float32: saturation of a gram seen once in the document
    doc_rumor: np.ndarray  # int32
    doc_kind: np.ndarray  # int8
    doc_order: np.ndarray  # int32: the document's place in (rumor id, position) order, for ties
    rumor_rank: np.ndarray  # int32: the rumor's place in rumor id order, for ties
    doc_places: np.ndarray  # uint64 (documents, width): the places each document mentions
    unknown_weight: float  # weight of a gram absent from the library: the median idf of the
    # characters and words, not the rarest gram's (an unseen word is not the strongest evidence
    # against a match)
    idf_max: float  # idf of a gram held by one rumor
    slots: np.ndarray  # int32 open-addressing hash table of vocab positions (-1: empty)

    def positions(self, grams: np.ndarray) -> np.ndarray:
        """The index of each gram in ``vocab``, -1 for a gram the library does not hold: a
        hash lookup, a few probes per gram instead of a binary search's 18 over the vocabulary
        (whose cache misses were a fifth of the scoring time)."""
        return probe(self.slots, self.vocab, grams)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return sum(getattr(self, f.name).nbytes for f in fields(self) if f.type == "np.ndarray")


HASH_MUL = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: a gram's slot is its top bits


def _slot_of(grams: np.ndarray, bits: int) -> np.ndarray:
    """The home slot of each gram in a table of ``2**bits`` slots."""
    return ((grams * HASH_MUL) >> np.uint64(64 - bits)).astype(np.int64)


def hash_slots(vocab: np.ndarray) -> np.ndarray:
    """An open-addressing (linear probing) table of at least twice ``vocab``'s size holding
    each gram's position; built by placing, round after round, the grams whose probe slot is
    free (the lowest position wins a contested slot, so the table is the same every build)."""
    bits = max(4, int(2 * max(len(vocab), 1) - 1).bit_length())
    size = 1 << bits
    slots = np.full(size, -1, dtype=np.int32)
    pending = np.arange(len(vocab), dtype=np.int64)
    at = _slot_of(vocab, bits)
    while len(pending):
        free = slots[at] < 0
        first = np.zeros(len(pending), dtype=bool)
        _, win = np.unique(at[free], return_index=True)
        first[np.flatnonzero(free)[win]] = True
        slots[at[first]] = pending[first]
        pending, at = pending[~first], (at[~first] + 1) & (size - 1)
    return slots


def probe(slots: np.ndarray, vocab: np.ndarray, grams: np.ndarray) -> np.ndarray:
    """Position in ``vocab`` of each gram (-1 when absent), following ``hash_slots``' probes."""
    out = np.full(len(grams), -1, dtype=np.int64)
    if len(vocab) == 0 or len(grams) == 0:
        return out
    mask = len(slots) - 1
    todo = np.arange(len(grams), dtype=np.int64)
    at = _slot_of(grams, mask.bit_length())
    while len(todo):
        cand = slots[at].astype(np.int64)
        found = cand >= 0
        hit = found & (vocab[np.maximum(cand, 0)] == grams[todo])
        out[todo[hit]] = cand[hit]
        more = found & ~hit  # an occupied slot of another gram: probe the next one
        todo, at = todo[more], (at[more] + 1) & mask
    return out


def _pairs(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(document, gram, count) of all texts, built in chunks."""
    docs, grams, counts = [], [], []
    for lo in range(0, len(texts), BUILD_CHUNK):
        owner, g, c = batch_grams(texts[lo : lo + BUILD_CHUNK])
        docs.append(owner + lo)
        grams.append(g)
        counts.append(c)
    if not docs:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int32)
    return np.concatenate(docs), np.concatenate(grams), np.concatenate(counts)


def _with_expansion(
    docs: np.ndarray, grams: np.ndarray, counts: np.ndarray, rumor: np.ndarray, expansion: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The document pairs plus each rumor's expansion grams on every document of that rumor
    (count 1) where the document lacks them; and which pairs are the document's own."""
    e_rumor, e_gram, _ = _pairs(expansion)
    if len(e_rumor) == 0:
        return docs, grams, counts, np.ones(len(docs), dtype=bool)
    by_rumor = np.argsort(rumor, kind="stable")  # documents grouped by rumor
    first = np.searchsorted(rumor[by_rumor], np.arange(len(expansion)))
    n_docs = np.bincount(rumor, minlength=len(expansion))
    reps = n_docs[e_rumor]
    pair = np.repeat(np.arange(len(e_rumor)), reps)
    offset = np.arange(len(pair)) - np.repeat(np.cumsum(reps) - reps, reps)
    x_doc = by_rumor[first[e_rumor[pair]] + offset].astype(np.int64)
    x_gram = e_gram[pair]
    shift = np.uint64(32)
    own_keys = (docs.astype(np.uint64) << shift) | grams
    new = ~np.isin((x_doc.astype(np.uint64) << shift) | x_gram, own_keys)
    return (
        np.concatenate([docs, x_doc[new]]),
        np.concatenate([grams, x_gram[new]]),
        np.concatenate([counts, np.ones(int(new.sum()), np.int32)]),
        np.concatenate([np.ones(len(docs), bool), np.zeros(int(new.sum()), bool)]),
    )


def build_index(
    texts: list[str],
    doc_rumor: list[int],
    doc_kind: list[int],
    expansion: list[str],
    rumor_rank: np.ndarray,
    params: IndexParams,
) -> Index:
    """Index ``texts`` (documents of rumor ``doc_rumor``); ``expansion[r]`` is rumor r's
    keywords and aliases, one per line; ``rumor_rank[r]`` its place in rumor id order."""
    n_rumors = len(expansion)
    n = max(n_rumors, 1)
    rumor = np.asarray(doc_rumor, dtype=np.int64)
    docs, grams, counts = _pairs(texts)
    docs, grams, counts, own = _with_expansion(docs, grams, counts, rumor, expansion)
    vocab, gidx = np.unique(grams, return_inverse=True)
    gidx = gidx.astype(np.int64)
    df = np.bincount(np.unique(gidx * n + rumor[docs]) // n, minlength=len(vocab))
    idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
    dl = np.bincount(docs[own], weights=counts[own], minlength=len(texts))
    avgdl = float(dl[dl > 0].mean()) if (dl > 0).any() else 1.0
    length = params.k1 * (1.0 - params.b + params.b * dl / avgdl)
    sat = (counts * (params.k1 + 1.0) / (counts + length[docs])).astype(np.float32)
    rare = df <= max(params.rare_min, params.rare_frac * n)
    keep = rare[gidx]
    order = np.lexsort((docs[keep], gidx[keep]))
    postings = docs[keep][order].astype(np.int32)
    saturation = sat[keep][order]
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(np.bincount(gidx[keep], minlength=len(vocab)), out=indptr[1:])
    common_rank = np.full(len(vocab), -1, dtype=np.int32)
    common_rank[~rare] = np.arange(int((~rare).sum()), dtype=np.int32)
    bits = np.zeros((len(texts), int((~rare).sum())), dtype=bool)
    bits[docs[~keep], common_rank[gidx[~keep]]] = True
    doc_norm = np.bincount(docs[own], weights=idf[gidx[own]], minlength=len(texts))
    single = vocab < PAIR_BIT  # characters and words: what an unseen gram of a text can be
    word = own & (grams >= WORD_BASE)  # words and character pairs: the wording
    doc_word_norm = np.bincount(docs[word], weights=idf[gidx[word]], minlength=len(texts))
    return Index(
        vocab=vocab,
        idf=idf,
        indptr=indptr,
        postings=postings,
        saturation=saturation,
        common_rank=common_rank,
        common_bits=np.packbits(bits, axis=1),
        doc_norm=doc_norm.astype(np.float32),
        doc_word_norm=doc_word_norm.astype(np.float32),
        doc_unit=((params.k1 + 1.0) / (1.0 + length)).astype(np.float32),
        doc_rumor=rumor.astype(np.int32),
        doc_kind=np.asarray(doc_kind, dtype=np.int8),
        doc_order=np.argsort(np.lexsort((np.arange(len(texts)), rumor_rank[rumor]))).astype(
            np.int32
        ),
        rumor_rank=np.asarray(rumor_rank, dtype=np.int32),
        doc_places=document_masks(texts) | document_masks(expansion)[rumor],
        unknown_weight=float(np.median(idf[single])) if single.any() else float(np.log1p(n)),
        idf_max=float(np.log1p((n - 0.5) / 1.5)),
        slots=hash_slots(vocab),
    )
