"""Navigational searches: a text asking to go somewhere or buy something (「<agency> 官网」,
「<product> 价格 一箱」, 「<brand> 客服电话」), told apart from a search for a claim.

Why (issue 17, docs/decisions/0062): 0048's intent words include words that are also claim
words in some rumors (酒店, 更新, 下载 in a rumor about a fire, a blogger, a leak), so gating
0058's unmet-name charge on them cost real searches. ``WORDS`` is the narrower list: words whose
only sense is navigational, commercial or a service (an official site or account, a price, a
phone line, an address, a download, watching online). A text holding one of them is
navigational (``asks``); 官方微博, which jieba cuts into 官方 + 微博, is found in the text itself.

A navigational text is *bare* when nothing else in it is a claim predicate: split at its
navigational words, every remaining piece is a noun phrase (its last jieba word, the head of a
Chinese compound, is tagged as a noun, name, number, measure word, abbreviation or Latin word).
「河北省 审计厅 官网」 and 「恰恰瓜子 价格 一箱」 are bare; 「家乐福 营业时间 封闭 孩子」 is not
(封闭 is a verb). Only short texts are examined (a query, not a post).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import rjieba

from matching.normalize import batch_segments

WORDS = """
官网 官方网站 官方微博 官微 网址 入口 登录 登陆 注册 客户端 app 下载 下载地址 地址 电话 客服
客服电话 热线 联系方式 营业时间 开放时间 时刻表 价格 多少钱 报价 价目表 票价 门票 团购 预订
预约 购票 订票 充值 缴费 在线 在线观看 观看 全集 视频 高清 回放 怎么样 材料 手续
"""
SHORT = 24  # characters: the longest text examined for bareness (queries are short)
NOUN_HEADS = ("n", "m", "q", "j", "eng", "x")  # jieba tags (prefixes) of a noun phrase's head


def words() -> list[str]:
    """The navigational words, in the order written, each once."""
    return list(dict.fromkeys(WORDS.split()))


@cache
def word_ids() -> np.ndarray:
    """Sorted gram ids of the navigational words that jieba keeps whole (a word it cuts, such
    as 官方微博, is found by ``split_words`` in the text instead)."""
    from matching.grams import PAIR_BIT, WORD_BASE, batch_grams, word_id

    owner, grams, _ = batch_grams(words())
    wordish = (grams >= WORD_BASE) & (grams < PAIR_BIT)
    whole = {word_id(w) for w in words()}
    return np.unique([g for g in grams[wordish].tolist() if g in whole]).astype(np.uint64)


@cache
def split_words() -> tuple[str, ...]:
    """The navigational words jieba cuts into parts (found as substrings of a text)."""
    return tuple(w for w in words() if len(rjieba.cut(w)) > 1)


@cache
def _pattern() -> re.Pattern[str]:
    """Any navigational word, longest first."""
    alts = sorted(words(), key=len, reverse=True)
    latin = "(?<![a-z0-9]){}(?![a-z0-9])"  # a Latin word whole: app is not in apple
    return re.compile(
        "|".join(latin.format(re.escape(w)) if w.isascii() else re.escape(w) for w in alts)
    )


def _noun_like(tag: str) -> bool:
    """Whether a jieba part-of-speech tag is a noun-like one."""
    return tag.startswith(NOUN_HEADS)


def _noun_phrase(piece: str, typed: bool) -> bool:
    """Whether ``piece`` (no navigational word, no space) reads as a noun phrase. A term the
    user typed between spaces (``typed``) is one when its last jieba word, the head of a
    Chinese compound, is noun-like; a piece of a text typed without spaces, where a verb may
    hide among the names, only when every word is noun-like or modifies a one-character noun
    right after it (审计 + 厅)."""
    tagged = [(w, t) for w, t in rjieba.tag(piece) if w.strip()]
    if not tagged:
        return False
    if typed:
        return _noun_like(tagged[-1][1])
    return all(
        _noun_like(t)
        or (i + 1 < len(tagged) and len(tagged[i + 1][0]) == 1 and _noun_like(tagged[i + 1][1]))
        for i, (_, t) in enumerate(tagged)
    )


def pieces(text: str) -> list[str]:
    """The parts of a normalised text between its spaces and navigational words."""
    return [p for term in text.split() for p in _pattern().split(term) if p.strip()]


def bare(text: str) -> bool:
    """Whether a normalised text is a bare navigational search (see the module docstring)."""
    if len(text) > SHORT or not _pattern().search(text):
        return False
    parts = pieces(text)
    typed = len(text.split()) > 1
    return bool(parts) and all(_noun_phrase(p, typed) for p in parts)


@dataclass(frozen=True)
class TextFlags:
    """What this module says of each text of a batch: it holds a navigational word jieba cuts
    (``split``), it is a bare navigational search (``bare``), and the (text, rumor) pairs whose
    rumor has an alias among the text's pieces (``exempt``, as ``text << 32 | rumor``)."""

    split: np.ndarray
    bare: np.ndarray
    exempt: np.ndarray


def flags(texts: Sequence[str | None], aliases: Mapping[str, Sequence[int]]) -> TextFlags:
    """The ``TextFlags`` of ``texts``; ``aliases`` maps a normalised alias to the rumors (their
    positions) that configure it: a moderator's alias in a bare search lets its rumor answer."""
    raw = [t or "" for t in texts]
    split = split_words()  # a word folding does not change (no traditional or wide forms)
    asks = np.fromiter((any(w in t for w in split) for t in raw), bool, len(raw))
    is_bare = np.zeros(len(raw), dtype=bool)
    exempt: set[int] = set()
    short = [i for i, t in enumerate(raw) if len(t) <= 2 * SHORT]  # before its noise goes
    for i, segs in zip(short, batch_segments([raw[i] for i in short]), strict=True):
        text = "\n".join(segs)
        if not bare(text):
            continue
        is_bare[i] = True
        for p in dict.fromkeys([text, *text.split(), *pieces(text)]):
            exempt.update((i << 32) | r for r in aliases.get(p, ()))
    return TextFlags(asks, is_bare, np.array(sorted(exempt), dtype=np.int64))
