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

Decision 0066 replaced the part-of-speech test, for texts typed as terms, by claim predicates
a rumor holds (the defaults of ``ScoreParams``; a text typed without spaces keeps the test
too): a short text holding a navigational or information-seeking word
(``INFO``: 名单, 流程, 攻略, 排名, 在哪 …) is bare for a rumor unless the rumor holds one of its
numbers (26万, 十分之一) or two of its other units that are no name and no word of the class
(「萧山 死猪 饲料 养鸭场 曝光 视频」: 曝光, which jieba tags a noun, counts like any word).

Decision 0069 narrowed what counts (``ScoreParams.claim_counts``, ``claim_names``,
``claim_specific``): a count with its measure word (一箱, 一斤) is no claim number, only a digit,
fraction, rank or percentage is; of the two words one must be uncommon in the language
(``frequency``: 旅游 签证 or 高考 成绩 name a topic people look up, 火车盒饭 or 外星人 a claim);
and the rumor must hold every name the search types (「伦敦 旅游 签证 材料」 is not about a
Thailand-visa rumor).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import rjieba

from matching.background import ratio
from matching.normalize import batch_segments

WORDS = """
官网 官方网站 官方微博 官微 网址 入口 登录 登陆 注册 客户端 app 下载 下载地址 地址 电话 客服
客服电话 热线 联系方式 营业时间 开放时间 时刻表 价格 多少钱 报价 价目表 票价 门票 团购 预订
预约 购票 订票 充值 缴费 在线 在线观看 观看 全集 视频 高清 回放 怎么样 材料 手续
"""
# Information-seeking words (docs/decisions/0066), written from how people search, not from
# rows: question words; reference and list nouns; procedures and requirements; when, where,
# how much; what people look up about a person or a thing. With ``WORDS`` they make the class
# a bare search may consist of besides its names (``ScoreParams.bare_words`` "information").
INFO = """
哪里 在哪 在哪里 在哪儿 哪儿 哪个 哪些 有哪些 什么 是什么 几点 几月 几号 多少 多久 多大
怎么 怎样 如何 怎么去 怎么办 怎么吃 怎么用 怎么做
名单 列表 大全 目录 排名 排行 排行榜 榜单 简介 介绍 资料 个人资料 百科 详情 图片 照片 壁纸
流程 步骤 方法 教程 攻略 指南 须知 注意事项 规则 要求 条件 标准 办理 申请 报名 查询 续签
时间 时间表 日期 安排 位置 地图 路线 费用 学费 收费标准 汇率 天气 分数线 录取分数线
年龄 身高 体重 真名 型号 参数 配置 节目单
"""
# Aspect nouns (docs/decisions/0078): nouns that name an attribute or an aspect of a thing
# rather than a thing, written from what people look up about a subject, not from rows: its
# measures and figures, its money, its rules, its times, how it is done or made and what it
# is made of, what it does and how it differs, and the people around a work or a team. A
# short search holding one that the rumor does not hold asks about the rumor's subject
# (``ScoreParams.claim_unshared`` "aspect").
ASPECTS = """
深度 高度 长度 宽度 面积 体积 重量 容量 含量 人口 寿命 落差 距离 温度 气温 速度 产量 发电量
销量 票房 规模 数量 比例 比率 概率 成绩 纪录 记录 排名 级别 等级 分数 得分
价格 价钱 税率 利率 费率 工资 薪水 收入 费用 成本 预算 额度 赔偿标准 待遇 福利
政策 制度 规定 法规 条例 法律 规则 程序 手续 原则
时间 日期 年份 季节 历史 由来 起源 周期 任期 期限 有效期 保质期 时长 近况 现状 进展 前景
做法 方法 技巧 工艺 原理 用途 功效 作用 副作用 区别 种类 类型 特点 成分 配料 配方 营养
症状 原因 途径 渠道 影响 意义 结果 数据 统计 分布 范围 条件 风俗 习俗 文化 服饰 特产
教练 主演 导演 作者 演员 成员 阵容 主题曲 剧照 歌曲 作品 电影 代表作 参数 型号 配置 产地
"""
SHORT = 24  # characters: the longest text examined for bareness (queries are short)
NOUN_HEADS = ("n", "m", "q", "j", "eng", "x")  # jieba tags (prefixes) of a noun phrase's head


def words() -> list[str]:
    """The navigational words, in the order written, each once."""
    return list(dict.fromkeys(WORDS.split()))


def class_words(cls: str = "navigational") -> list[str]:
    """The words a bare search may hold besides its names: the navigational words, and for
    ``cls`` "information" the information-seeking words too."""
    extra = INFO.split() if cls == "information" else []
    return list(dict.fromkeys([*words(), *extra]))


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
def _pattern(cls: str = "navigational") -> re.Pattern[str]:
    """Any word of ``class_words(cls)``, longest first."""
    alts = sorted(class_words(cls), key=len, reverse=True)
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


def pieces(text: str, cls: str = "navigational") -> list[str]:
    """The parts of a normalised text between its spaces and words of ``class_words(cls)``."""
    return [p for term in text.split() for p in _pattern(cls).split(term) if p.strip()]


def bare(text: str, cls: str = "navigational", pos: str = "all") -> bool:
    """Whether a normalised text is a bare search (see the module docstring): it holds a word
    of ``class_words(cls)`` and its other pieces are noun phrases, a test made for every text
    (``pos`` "all"), for texts typed without spaces only ("untyped": a sentence, whose verbs
    jieba tags in context, not a lone typed term such as 曝光 or 签证) or for none ("none")."""
    if len(text) > SHORT or not _pattern(cls).search(text):
        return False
    parts = pieces(text, cls)
    typed = len(text.split()) > 1
    tagged = pos == "all" or (pos == "untyped" and not typed)
    return bool(parts) and (not tagged or all(_noun_phrase(p, typed) for p in parts))


NAME_TAGS = ("nr", "ns", "nt")  # jieba's person, place and organisation names


def claim_number(unit: str) -> bool:
    """Whether a number-like unit states a claim's figure (decision 0069): it holds a digit
    (26万, 167名, 1.2%), or is a fraction (十分之一), a rank (第一, 第三名) or a percentage
    (百分之八十); a count with its measure word (一箱, 一斤, 三天) says how much of a thing is
    asked about, not what a rumor claims."""
    return (
        any(c.isdigit() for c in unit)
        or unit.startswith("第")
        or any(m in unit for m in ("分之", "%", "百分"))
    )


@cache
def frequency(word: str) -> int:
    """How common ``word`` is in general Chinese: its count in jieba's dictionary (a large
    general corpus), by ``rjieba.suggest_freq`` (a dictionary word's count plus one; a unit the
    dictionary lacks, such as a typed compound 火车盒饭, gets the small count that would join
    it). A unit common in the language (旅游, 传统, 成绩) names a topic, not a claim."""
    return int(rjieba.suggest_freq(word))


@dataclass(frozen=True)
class Units:
    """The units of a bare text (``units``): claim numbers, counts with a measure word,
    other content units, and names (jieba's person, place and organisation tags)."""

    numbers: list[str]
    quantities: list[str]
    content: list[str]
    names: list[str]
    topical: bool = False  # a short typed search with no word of the class (decision 0072)


def units(text: str, cls: str = "navigational") -> Units:
    """The units of a bare text that can state a claim when a rumor holds them (decisions
    0066, 0069): its numbers (jieba's m, or a digit: 26万, 十分之一, 167), split into claim
    numbers and counts (``claim_number``), its names, and its other units of two characters or
    more that are no word of the class. A unit is a piece the user typed between spaces
    (恰恰瓜子 is one, though jieba cuts it in two), or, in a text typed without spaces, a
    jieba word."""
    found: tuple[list[str], list[str], list[str], list[str]] = ([], [], [], [])
    numbers, counts, content, names = found
    skip = set(class_words(cls))
    typed = len(text.split()) > 1
    for piece in pieces(text, cls):
        tagged = [(w.strip(), t) for w, t in rjieba.tag(piece) if w.strip() and w not in skip]
        cut = [(piece.strip(), [t for _, t in tagged])] if typed else [(w, [t]) for w, t in tagged]
        for unit, tags in cut:
            if not tags:
                continue
            if any(c.isdigit() for c in unit) or (
                tags[0].startswith("m") and all(t.startswith(("m", "q")) for t in tags)
            ):
                if len(unit) > 1 or unit.isdigit():
                    (numbers if claim_number(unit) else counts).append(unit)
            elif all(t.startswith(NAME_TAGS) for t in tags):
                names.append(unit)
            elif len(unit) > 1:
                content.append(unit)
    return Units(*(list(dict.fromkeys(f)) for f in found))


def predicates(text: str, cls: str = "navigational") -> tuple[list[str], list[str]]:
    """Decision 0066's claim predicates of a bare text: its numbers and counts together, and
    its content units (see ``units``)."""
    got = units(text, cls)
    return [*got.numbers, *got.quantities], got.content


def claimed(
    nums: Sequence[str], units: Sequence[str], holds: Callable[[int, str], bool], rumor: int,
    numbers: bool, least: int,
) -> bool:  # fmt: skip
    """Whether a bare text with these predicates (``predicates``) is a claim search for
    ``rumor`` after all: the rumor holds one of its numbers (``numbers``), or ``least`` of its
    other units (0: never)."""
    if numbers and any(holds(rumor, w) for w in nums):
        return True
    return 0 < least <= len(units) and sum(holds(rumor, w) for w in units) >= least


@dataclass(frozen=True)
class TextFlags:
    """What this module says of each text of a batch: it holds a navigational word jieba cuts
    (``split``), it is a bare navigational search (``bare``), and the (text, rumor) pairs whose
    rumor has an alias among the text's pieces (``exempt``, as ``text << 32 | rumor``);
    ``claims`` gives a bare text's units and ``states`` tells, for them and a rumor, whether
    the rumor holds its claim predicates (decisions 0066, 0069; checked only for the scored
    cells)."""

    split: np.ndarray
    bare: np.ndarray
    exempt: np.ndarray
    claims: Mapping[int, Units] = field(default_factory=dict)
    states: Callable[[Units, int], bool] | None = None


@dataclass(frozen=True)
class BareRule:
    """Which bare searches go unanswered (``ScoreParams``' bare_words, bare_pos,
    claim_numbers, claim_words, claim_counts, claim_rare, claim_names), whether a rumor holds
    a word (``ClaimText.holds``) and how many rumors do (``ClaimText.rumors_holding``)."""

    cls: str = "navigational"
    pos: str = "all"
    numbers: bool = False
    least: int = 0
    holds: Callable[[int, str], bool] | None = None
    counts: bool = True  # a count with its measure word (一箱) is a number (0066)
    rare: int = 0  # a content unit counts when at most this many rumors hold it (0: any)
    names: bool = False  # the rumor must hold every name of the text too
    holding: Callable[[str], int] | None = None
    generic: int = 0  # a content unit counts when its general frequency is at most this
    specific: int = 0  # and one unit the rumor holds must be at most this (0: off)
    shared: int = 0  # a short typed search shares this many units with a rumor or is topical
    predicate: bool = False  # ... or one shared unit is a predicate or a figure (0072)
    loose: bool = False  # a unit is shared when the rumor holds one of its words too
    # decision 0075: a short typed search answers a rumor only when one unit it shares is rare
    # in ordinary posts relative to the library (``matching.background``); None: off
    background: Callable[[str], int] | None = None  # posts of the background holding a word
    background_size: int = 0
    library_size: int = 0
    background_ratio: float = 0.0  # a shared unit below this ratio states the claim
    background_prior: float = 0.5
    background_numbers: bool = True  # a shared claim number states the claim too
    # decision 0078: a short typed search does not answer a rumor when one of its units that
    # the rumor does not hold names an aspect of the subject (``aspect``'s mode; "": off)
    unshared: str = ""
    unshared_loose: bool = True  # ... a unit is held when the rumor holds one of its words

    def states(self, claim: Units, rumor: int) -> bool:
        """Whether ``rumor`` holds the claim predicates of a bare text's units ``claim``."""
        assert self.holds is not None
        if claim.topical:
            if self.unshared and self.asks(claim, rumor):
                return False
            if self.background is not None:
                return self.distinct(claim, rumor)
            return self.shares(claim, rumor)
        if self.names and not all(self.holds(rumor, n) for n in claim.names):
            return False
        nums = [*claim.numbers, *claim.quantities] if self.counts else claim.numbers
        content = claim.content
        if self.rare and self.holding is not None:
            content = [w for w in content if self.holding(w) <= self.rare]
        if self.generic:
            content = [w for w in content if frequency(w) <= self.generic]
        if claimed(nums, [], self.holds, rumor, self.numbers, 0):
            return True
        if self.specific and not any(
            frequency(w) <= self.specific and self.holds(rumor, w) for w in content
        ):
            return False
        return claimed([], content, self.holds, rumor, False, self.least)

    def shares(self, claim: Units, rumor: int) -> bool:
        """Whether a short typed search with units ``claim`` shares part of ``rumor``'s claim,
        not only its subject (decision 0072): the rumor holds ``shared`` of its units, or, with
        ``predicate``, one that states something (a verb, adjective or other non-noun word, or
        a figure: ``predicative``)."""
        assert self.holds is not None
        every = (*claim.numbers, *claim.quantities, *claim.content, *claim.names)
        held = [w for w in every if self._shared(rumor, w)]
        if self.predicate and any(predicative(w) for w in held):
            return True
        return len(held) >= self.shared

    def asks(self, claim: Units, rumor: int) -> bool:
        """Whether a short typed search with units ``claim`` asks about ``rumor``'s subject
        (decision 0078): one of its units that the rumor does not hold (not even, with
        ``unshared_loose``, one of its words) names an aspect (``aspect`` by ``unshared``: 税率,
        深度, 政策 beside 北京 房产税). What the search adds that the rumor lacks tells what the
        user is doing; an unshared verb or state (死了 for 去世) may be the claim in their words."""
        return any(
            not self._shared(rumor, w, self.unshared_loose) and aspect(w, self.unshared)
            for w in (*claim.content, *claim.names)
        )

    def distinct(self, claim: Units, rumor: int) -> bool:
        """Whether a short typed search with units ``claim`` shares with ``rumor`` a unit that
        states its claim rather than its subject (decision 0075): one whose rate in the
        background of ordinary posts over its rate in the library (``background.ratio``) is
        below ``background_ratio``, or, with ``background_numbers``, one of its claim numbers.
        A unit is judged by the forms the rumor holds: itself, or with ``loose`` its words."""
        assert self.holds is not None and self.background is not None
        assert self.holding is not None
        for unit in (*claim.numbers, *claim.quantities, *claim.content, *claim.names):
            forms = self._forms(rumor, unit)
            if forms and self.background_numbers and unit in claim.numbers:
                return True
            for w in forms:
                r = ratio(
                    self.background(w), self.background_size, self.holding(w),
                    self.library_size, self.background_prior,
                )  # fmt: skip
                if r < self.background_ratio:
                    return True
        return False

    def _forms(self, rumor: int, unit: str) -> list[str]:
        """The forms of ``unit`` that ``rumor`` holds: the unit, or with ``loose`` its jieba
        words of two characters or more."""
        assert self.holds is not None
        if self.holds(rumor, unit):
            return [unit]
        if not self.loose:
            return []
        return [w for w in _words(unit) if len(w) > 1 and self.holds(rumor, w)]

    def _shared(self, rumor: int, unit: str, loose: bool | None = None) -> bool:
        """Whether ``rumor`` holds ``unit``, or with ``loose`` (``self.loose`` when None) one
        of its words of two characters or more (a typed compound the rumor words apart)."""
        assert self.holds is not None
        if self.holds(rumor, unit):
            return True
        loose = self.loose if loose is None else loose
        return loose and any(self.holds(rumor, w) for w in _words(unit) if len(w) > 1)


@cache
def aspect_words() -> frozenset[str]:
    """The aspect nouns (``ASPECTS``)."""
    return frozenset(ASPECTS.split())


def aspect(unit: str, mode: str) -> bool:
    """Whether a typed unit names an aspect of a subject (decision 0078), by ``mode``:
    "aspect", the unit or its last jieba word is an aspect noun (``ASPECTS``); "noun", its
    last jieba word, the head of a Chinese compound, is a common noun by jieba's tags (n, vn,
    ng, nz: not a person, place or organisation name); "names", any noun or name."""
    tagged = _tagged(unit)
    if not tagged:
        return False
    head, tag = tagged[-1]
    if mode == "aspect":
        return unit in aspect_words() or head in aspect_words()
    if mode == "noun":
        return tag.startswith(("n", "vn")) and not tag.startswith(NAME_TAGS)
    if mode == "names":
        return tag.startswith(("n", "vn"))
    raise ValueError(f"claim_unshared {mode!r} is not one of aspect, noun, names")


NOUNISH = ("n", "j", "l", "eng", "x", "q", "f", "s", "m", "r")  # jieba tags naming things


@cache
def _tagged(unit: str) -> tuple[tuple[str, str], ...]:
    """jieba's words and tags of a unit standing alone."""
    return tuple((w, t) for w, t in rjieba.tag(unit) if w.strip())


def _words(unit: str) -> list[str]:
    """jieba's words of a unit."""
    return [w for w, _ in _tagged(unit)]


def predicative(unit: str) -> bool:
    """Whether a unit states something rather than naming it (decision 0072): one of its
    words is no noun, name, number, measure or pronoun by jieba's tags (破产 v, 去世 t, 嫩模 b,
    黑苹果 a + n, 没可能 d + v), or it is a figure: a claim number whose last word is no noun
    (26万, 第79位, 105万; 110米栏 and 3D name a thing)."""
    tags = [t for _, t in _tagged(unit)]
    if any(c.isdigit() for c in unit) or claim_number(unit):
        return claim_number(unit) and bool(tags) and not tags[-1].startswith("n")
    return any(not t.startswith(NOUNISH) for t in tags)


def topical(text: str, cls: str) -> bool:
    """Whether a normalised text is a short search typed as terms that holds no word of
    ``class_words(cls)`` (those are ``bare``'s): the searches decision 0072 examines."""
    return len(text) <= SHORT and len(text.split()) > 1 and not _pattern(cls).search(text)


def flags(
    texts: Sequence[str | None], aliases: Mapping[str, Sequence[int]], rule: BareRule | None = None
) -> TextFlags:
    """The ``TextFlags`` of ``texts``; ``aliases`` maps a normalised alias to the rumors (their
    positions) that configure it: a moderator's alias in a bare search lets its rumor answer,
    and so does a rumor holding the text's claim predicates (``rule``, decision 0066)."""
    rule = rule or BareRule()
    raw = [t or "" for t in texts]
    split = split_words()  # a word folding does not change (no traditional or wide forms)
    asks = np.fromiter((any(w in t for w in split) for t in raw), bool, len(raw))
    is_bare = np.zeros(len(raw), dtype=bool)
    exempt: set[int] = set()
    claims: dict[int, Units] = {}
    checks = rule.holds is not None and (rule.numbers or rule.least > 0)
    short = [i for i, t in enumerate(raw) if len(t) <= 2 * SHORT]  # before its noise goes
    for i, segs in zip(short, batch_segments([raw[i] for i in short]), strict=True):
        text = "\n".join(segs)
        subject_test = rule.shared or rule.background is not None or rule.unshared
        if checks and subject_test and topical(text, rule.cls):
            is_bare[i] = True
            claims[i] = dataclasses.replace(units(text, rule.cls), topical=True)
            for p in dict.fromkeys([text, *text.split()]):
                exempt.update((i << 32) | r for r in aliases.get(p, ()))
            continue
        if not bare(text, rule.cls, rule.pos):
            continue
        is_bare[i] = True
        for p in dict.fromkeys([text, *text.split(), *pieces(text, rule.cls)]):
            exempt.update((i << 32) | r for r in aliases.get(p, ()))
        if checks:
            claims[i] = units(text, rule.cls)
    exempts = np.array(sorted(exempt), dtype=np.int64)
    return TextFlags(asks, is_bare, exempts, claims, rule.states if checks else None)
