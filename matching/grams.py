"""Stable gram ids for a batch of texts: CJK characters, jieba words of two or more CJK
characters, Latin (space-delimited) words, and CJK character pairs, each with its count.

Why these grams (measured on the tune half of ``make eval-search``, docs/decisions/0010): single
characters carry a paraphrase's evidence (a retelling shares few character pairs with its rumor
but most of its rare characters), and words say which characters belong together (「宁波」 is one
name, not 「宁」 and 「波」 apart), so a query's place name and its claim weigh as words. Character
2-3-grams, the previous grams, scored lower on every kind once words and characters were in.

Character pairs (two adjacent CJK characters) are the sequence evidence a quote leaves: they
weigh only in containment (how much of a rumor's wording a post carries), where characters
alone would let any long post "contain" a short rumor.

Ids: a CJK character is its code point; a word is ``crc32`` of the word shifted above the
code-point range; a pair is its two code points with ``PAIR_BIT`` set; so ids are the same in
every process (Python's salted ``hash()`` is never
used). Texts are normalised first (``segments``: noise, NFKC, case, traditional -> simplified).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from matching.chinese import cut
from matching.normalize import batch_segments
from matching.synonyms import canonical

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
PAIR_BIT = 1 << 42  # above any word id; a pair is two 21-bit code points below it
KEY_SHIFT = 44  # (text, gram) packs into one uint64: a batch holds at most 2**20 texts
STOPWORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is",
     "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "will", "with")
)  # fmt: skip


@lru_cache(maxsize=1 << 18)
def word_id(word: str) -> int:
    """The stable token id of a word (cached: the same words recur in every batch)."""
    return WORD_BASE + zlib.crc32(word.encode("utf-8")) % WORD_SPAN


_ids: dict[str, int] = {}  # word -> id for ``word_ids``
IDS_MAX = 1 << 18
SLICE = 4096  # words per C-level call: a GroupWarnings call of 400k characters must not hold
# the GIL for tens of ms in one call while a RankFeed waits (docs/decisions/0021)


def word_ids(words: list[str]) -> list[int]:
    """``word_id`` of each word, in bulk: the new words are a set difference and the lookups a
    ``map`` over a dict, so a batch costs no Python frame per word. The dict is replaced (never
    cleared in place: another thread may be reading it) when it outgrows ``IDS_MAX``."""
    global _ids
    table = _ids
    if len(table) > IDS_MAX:
        table = _ids = {}
    out: list[int] = []
    for lo in range(0, len(words), SLICE):  # slices: another thread may take the GIL between
        part = words[lo : lo + SLICE]
        for w in set(part).difference(table):  # iterates the slice, not the whole table
            table[w] = word_id(w)
        out += map(table.__getitem__, part)
    return out


def text_block(texts: Sequence[str | None]) -> tuple[str, np.ndarray]:
    """The normalised texts joined into one string, and each text's start offset in it."""
    parts = ["\n".join(s) for s in batch_segments(texts)]
    lengths = np.fromiter((len(p) + 1 for p in parts), dtype=np.int64, count=len(parts))
    starts = np.zeros(len(parts), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return "\n".join(parts), starts


def _characters(block: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets and ids of the CJK characters (code points) and character pairs of ``block``,
    and the CJK mask."""
    cp = np.frombuffer(block.encode("utf-32-le"), dtype=np.uint32)
    is_cjk = np.zeros(len(cp), dtype=bool)
    for lo, hi in CJK_RANGES:
        is_cjk |= (cp >= lo) & (cp <= hi)
    pos = np.flatnonzero(is_cjk)
    ids = cp[pos].astype(np.uint64)
    pair = np.flatnonzero(pos[1:] == pos[:-1] + 1)
    pair_ids = (ids[pair] << np.uint64(21)) | ids[pair + 1] | np.uint64(PAIR_BIT)
    return np.concatenate([pos, pos[pair]]), np.concatenate([ids, pair_ids]), is_cjk


def _words(block: str, tokens: list[str], is_cjk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and ids of the words of ``block`` (whose jieba ``tokens`` concatenate back to
    it): words of 2+ characters starting with a CJK character, and Latin words of 2+
    characters that are not stop words."""
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    starts = np.cumsum(lengths) - lengths
    chosen = np.flatnonzero((lengths > 1) & is_cjk[np.minimum(starts, len(is_cjk) - 1)])
    pos: list[int] = starts[chosen].tolist()
    ids: list[int] = word_ids(list(map(tokens.__getitem__, chosen.tolist())))
    for m in WORD.finditer(block):
        word = m.group()
        if len(word) > 1 and word not in STOPWORDS:
            pos.append(m.start())
            ids.append(word_id(word))
    return np.array(pos, dtype=np.int64), np.array(ids, dtype=np.uint64)


def batch_grams(texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (text index, gram id) pairs of ``texts`` sorted by text then gram, and how often
    each gram occurs in its text (at most 2**20 texts a call)."""
    block, text_starts = text_block(texts)
    if not block.strip():
        return np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int32)
    tokens = cut(block)
    block, tokens, text_starts = canonical(block, tokens, text_starts)
    c_pos, c_ids, is_cjk = _characters(block)
    w_pos, w_ids = _words(block, tokens, is_cjk)
    pos = np.concatenate([c_pos, w_pos])
    ids = np.concatenate([c_ids, w_ids])
    owner = (np.searchsorted(text_starts, pos, side="right") - 1).astype(np.uint64)
    keys = np.sort((owner << np.uint64(KEY_SHIFT)) | ids)
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    at = np.flatnonzero(first)
    counts = np.diff(np.append(at, len(keys))).astype(np.int32)
    keys = keys[at]
    gram = keys & np.uint64((1 << KEY_SHIFT) - 1)
    return (keys >> np.uint64(KEY_SHIFT)).astype(np.int64), gram, counts
