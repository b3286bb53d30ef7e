"""Stable n-gram ids for a batch of texts: character 2- and 3-grams over CJK, word 1- to 3-grams
over Latin (and other space-delimited) words, with mixed CJK/word runs handled alike.

Tokens are CJK characters (their code point) and words (``crc32`` of the word, shifted above the
code-point range), so ids are the same in every process; Python's salted ``hash()`` is never used.
Punctuation, spaces and segment breaks end a CJK run; spaces and punctuation between two words do
not (English phrases stay phrases). The whole batch is processed with numpy in one pass.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from matching.normalize import segments

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
WORD = re.compile(f"[^\\W_{CJK}]+")
CJK_RANGES = (
    (0x3040, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xAC00, 0xD7AF),
)
WORD_BASE = 0x110000
WORD_SPAN = (1 << 31) - WORD_BASE
MIX_A = np.uint64(0x9E3779B97F4A7C15)
MIX_B = np.uint64(0xC2B2AE3D27D4EB4F)
TRIGRAM_BIT = np.uint64(1 << 63)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
    ]
)


def word_id(word: str) -> int:
    """The stable token id of a word."""
    return WORD_BASE + zlib.crc32(word.encode("utf-8")) % WORD_SPAN


def text_block(texts: Sequence[str | None]) -> tuple[str, np.ndarray]:
    """The normalised texts joined into one string, and each text's start offset in it."""
    parts = ["\n".join(segments(t)) for t in texts]
    lengths = np.fromiter((len(p) + 1 for p in parts), dtype=np.int64, count=len(parts))
    starts = np.zeros(len(parts), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return "\n".join(parts), starts


def _tokens(block: str) -> tuple[np.ndarray, ...]:
    """Token start, end, id, is-word and is-unigram arrays of ``block`` in text order, and the
    running count of newlines per character."""
    cp = np.frombuffer(block.encode("utf-32-le"), dtype=np.uint32)
    is_cjk = np.zeros(len(cp), dtype=bool)
    for lo, hi in CJK_RANGES:
        is_cjk |= (cp >= lo) & (cp <= hi)
    pos = np.flatnonzero(is_cjk)
    w_start, w_end, w_id, w_uni = [], [], [], []
    for m in WORD.finditer(block):
        word = m.group()
        w_start.append(m.start())
        w_end.append(m.end())
        w_id.append(word_id(word))
        w_uni.append(len(word) > 1 and word not in STOPWORDS)
    start = np.concatenate([pos, np.array(w_start, dtype=np.int64)])
    end = np.concatenate([pos + 1, np.array(w_end, dtype=np.int64)])
    ids = np.concatenate([cp[pos].astype(np.uint64), np.array(w_id, dtype=np.uint64)])
    word = np.concatenate([np.zeros(len(pos), bool), np.ones(len(w_start), bool)])
    uni = np.concatenate([np.zeros(len(pos), bool), np.array(w_uni, dtype=bool)])
    if w_start:
        order = np.argsort(start, kind="stable")
        start, end, ids, word, uni = start[order], end[order], ids[order], word[order], uni[order]
    breaks = np.cumsum(cp == 10)  # newlines: segment and text boundaries
    return start, end, ids, word, uni, breaks


def batch_grams(texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (text index, gram id) pairs of ``texts``, sorted by text then gram."""
    block, text_starts = text_block(texts)
    if not block:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    start, end, ids, word, uni, breaks = _tokens(block)
    same_seg = breaks[np.minimum(start[1:], len(breaks) - 1)] == breaks[end[:-1] - 1]
    link = (start[1:] == end[:-1]) | (word[1:] & word[:-1] & same_seg)
    bi = np.flatnonzero(link)
    tri = bi[(bi + 1 < len(link))]
    tri = tri[link[np.minimum(tri + 1, len(link) - 1)]]
    big = (ids[:-1] << np.uint64(31)) | ids[1:]
    tri_ids = ((big[tri] * MIX_A) ^ (ids[tri + 2] * MIX_B)) | TRIGRAM_BIT
    uni_pos = np.flatnonzero(uni)
    pos = np.concatenate([bi, tri, uni_pos])
    grams = np.concatenate([big[bi], tri_ids, ids[uni_pos]])
    owner = np.searchsorted(text_starts, start[pos], side="right") - 1
    order = np.lexsort((grams, owner))
    owner, grams = owner[order], grams[order]
    keep = np.ones(len(grams), dtype=bool)
    keep[1:] = (owner[1:] != owner[:-1]) | (grams[1:] != grams[:-1])
    return owner[keep], grams[keep]
