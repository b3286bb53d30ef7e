"""What the matcher does with Chinese as people type it: traditional characters and full-width
forms fold onto the library, keywords and aliases are evidence inside the one score (never a
bypass), short queries match, and answers do not depend on library order."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pytest

from domain.records import Rumor
from domain.rows import RecordError, parse_rumor
from matching import LibraryEntry, Matcher, matcher_library, normalize
from matching.chinese import parse_table, to_simplified
from matching.foldtable import TABLE_SIZE, fold_exact, fold_many
from matching.grams import PAIR_BIT
from tests.fixtures.matching import LIBRARY

TENCENT = LibraryEntry(
    "t1", "腾讯宣布微信将从下月起按条收费，每条消息一毛钱", ("微信", "收费"), (), ("鹅厂",)
)
OTHERS = [
    LibraryEntry("t2", "某地自来水检出大量致癌物，专家呼吁不要饮用"),
    LibraryEntry("t3", "某银行即将倒闭，储户排队取款"),
    LibraryEntry("t4", "明天全市停水停电，赶紧囤水"),
    LibraryEntry("t5", "喝板蓝根可以预防流感"),
]


def top(matcher: Matcher, text: str):
    found = matcher.match(text, k=1)
    return found[0] if found else None


def test_traditional_and_full_width_text_fold_to_simplified() -> None:
    assert to_simplified("寧波婦兒醫院 母親 抱嬰兒 墜樓") == "宁波妇儿医院 母亲 抱婴儿 坠楼"
    assert normalize("ＶＣ可以預防感冒！") == "vc可以预防感冒!"
    assert parse_table(["醫\t医", "乾\t干 乾", "x\ty", "ab\tc", "bad line"]) == {
        ord("醫"): "医",
        ord("乾"): "干",
        ord("x"): "y",
    }


def test_batch_folding_equals_the_definition_on_every_kind_of_character() -> None:
    rng = random.Random(7)
    tricky = [
        "e\u0301t\u00e9",  # a combining accent composes with its letter
        "\u1100\u1161\u11a8 \u3131\u314f",  # Hangul jamo compose into syllables
        "ﬁ ß Ǆ ㈱ ½ ①",  # folds longer than one character
        "😂[泪]𝐀𝐁 \U0002f800 \U00030000",  # astral: emoji, maths letters, compatibility ideographs
        "寧波婦兒醫院ＡＢＣ１２３",
        "",
    ]
    randoms = [
        "".join(chr(rng.randrange(0x20, TABLE_SIZE + 0x100)) for _ in range(rng.randrange(1, 30)))
        for _ in range(300)
    ]
    texts = [t for t in tricky + randoms if not any(0xD800 <= ord(c) <= 0xDFFF for c in t)]
    assert fold_many(texts) == [fold_exact(t) for t in texts]
    assert fold_exact("Ａ醫") == unicodedata.normalize("NFKC", "Ａ").casefold() + "医"


def test_a_traditional_query_finds_the_simplified_rumor() -> None:
    matcher = Matcher().build(LIBRARY)
    for query, rumor_id in (
        ("單雙號限行 北京", "r2"),
        ("商業銀行 倒閉", "r4"),
        ("板藍根 預防流感", "r1"),
    ):
        m = top(matcher, query)
        assert m is not None and m.rumor_id == rumor_id, query
        assert m.score >= matcher.thresholds.search, (query, m.score)


def test_a_keyword_is_evidence_not_a_bypass() -> None:
    """r2's keywords are 北京 and 单双号限行: 「北京 天气」 shares one keyword and says something
    else, so it is not answered; the claim's own terms are."""
    matcher = Matcher().build(LIBRARY)
    m = top(matcher, "北京 天气")
    assert m is None or m.score < matcher.thresholds.search, m
    m = top(matcher, "北京 单双号限行")
    assert m is not None and m.rumor_id == "r2" and m.score >= matcher.thresholds.search


def test_an_alias_lets_a_nickname_query_match() -> None:
    with_alias = Matcher().build([TENCENT, *OTHERS])
    without = Matcher().build([LibraryEntry("t1", TENCENT.claim, TENCENT.keywords), *OTHERS])
    m = top(with_alias, "鹅厂 收费")
    assert m is not None and m.rumor_id == "t1" and m.score >= with_alias.thresholds.search
    n = top(without, "鹅厂 收费")
    assert n is None or n.score < without.thresholds.search
    assert m.matched_text == TENCENT.claim  # the alias is evidence, the claim is what matched


def test_short_queries_match() -> None:
    matcher = Matcher().build(LIBRARY)
    for query, rumor_id in (("板蓝根", "r1"), ("北京限行", "r2"), ("万达爆炸", "r3")):
        m = top(matcher, query)
        assert m is not None and m.rumor_id == rumor_id, query
        assert m.score >= matcher.thresholds.search, (query, m.score)


def test_an_unseen_gram_weighs_as_a_typical_one() -> None:
    library = [LibraryEntry(f"x{i:02d}", f"今天的天气很好，大家出门走走{c}") for i, c in
               enumerate("甲乙丙丁戊己")]  # fmt: skip
    index = Matcher().build(library).index
    assert index is not None
    single = index.vocab < PAIR_BIT
    assert index.unknown_weight == pytest.approx(float(np.median(index.idf[single])))
    assert index.unknown_weight < 0.5 * index.idf_max


def test_answers_do_not_depend_on_library_order() -> None:
    twins = [
        LibraryEntry("b", "明天全市停水停电，赶紧囤水"),
        LibraryEntry("a", "明天全市停水停电，赶紧囤水"),
    ]
    library = [*twins, *OTHERS[:3], *LIBRARY]
    texts = ["明天停水停电 囤水", "北京 单双号限行", "商业银行倒闭了吗", "今天天气不错"]
    want = Matcher().build(library).match_batch(texts, k=3)
    assert want[0][0].rumor_id == "a" and want[0][1].rumor_id == "b"
    for seed in range(3):
        shuffled = library[:]
        random.Random(seed).shuffle(shuffled)
        assert Matcher().build(shuffled).match_batch(texts, k=3) == want


def test_aliases_are_part_of_the_rumor_contract() -> None:
    r = parse_rumor({"rumor_id": "r1", "claim": "c", "aliases": "维C; 维生素C,,"})
    assert r.aliases == ("维C", "维生素C")
    assert parse_rumor({"rumor_id": "r1", "aliases": ["鹅厂", " "]}).aliases == ("鹅厂",)
    assert parse_rumor({"rumor_id": "r1"}).aliases == ()
    with pytest.raises(RecordError, match="aliases must be a list or a string"):
        parse_rumor({"rumor_id": "r1", "aliases": 5})
    assert Rumor.from_dict(r.to_dict()) == r
    assert Rumor.from_dict({"rumor_id": "r1"}).aliases == ()
    (entry,) = matcher_library([r])
    assert entry.aliases == ("维C", "维生素C")
