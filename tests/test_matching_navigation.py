"""Navigational searches (docs/decisions/0062): the unmet-name charge is gated on navigational
words only (not on intent words that are claim words in some rumors), and a bare navigational
search, names and navigational words and nothing else, is not answered unless it holds an
alias of the rumor."""

from __future__ import annotations

import pytest

from matching import LibraryEntry, Matcher, ScoreParams
from matching.navigation import bare, flags, split_words
from tests.fixtures.matching import LIBRARY

SEEDS = LibraryEntry("s1", "恰恰瓜子被曝含致癌物，价格一箱才几十元，千万别买", ("恰恰瓜子",))
FIRE = LibraryEntry("f1", "襄阳一酒店大火十四人遇难，央视却只报道波士顿爆炸", ())
SUB = LibraryEntry("j1", "蛟龙号官方微博删光了，黑匣子数据被隐瞒", ("蛟龙号",))
BOOK = [*LIBRARY, SEEDS, FIRE, SUB]
OFF = ScoreParams(bare_scale=1.0)  # no bare-search rule
# decision 0062's bare rule (part-of-speech tags, navigational words, no claim predicates);
# 0066's default is pinned in tests/test_matching_claim_predicates.py
P0062 = ScoreParams(bare_words="navigational", bare_pos="all", claim_numbers=False, claim_words=0)


def _score(params: ScoreParams, text: str, book: list[LibraryEntry] = BOOK) -> float:
    """The best score ``text`` gets (0 when nothing matches)."""
    got = Matcher(params=params).build(book).match(text, k=1)
    return got[0].score if got else 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("河北省 审计厅 官网", True),
        ("恰恰瓜子 价格 一箱", True),
        ("蛟龙号 官方微博", True),
        ("河北省审计厅官网", True),
        ("家乐福 营业时间 封闭 孩子", False),  # 封闭: a claim predicate
        ("蛟龙号官方微博删光黑匣子", False),  # typed without spaces, the verb still counts
        ("恰恰瓜子 致癌", False),  # no navigational word
        ("samsung apple 硬币", False),  # app is not a word of apple
        ("恰恰瓜子 价格 一箱 " * 3, False),  # too long for a query
    ],
)
def test_a_bare_search_is_names_and_navigational_words_only(text: str, expected: bool) -> None:
    assert bare(text) is expected


def test_a_bare_search_is_not_answered_and_a_claim_search_still_is() -> None:
    assert _score(OFF, "恰恰瓜子 价格 一箱") > 0.9  # every word is the rumor's
    assert _score(P0062, "恰恰瓜子 价格 一箱") == 0.0
    claim = "恰恰瓜子 致癌 价格"  # the claim's predicate: a real search about the rumor
    assert _score(P0062, claim) == pytest.approx(_score(OFF, claim))
    assert _score(ScoreParams(), claim) == pytest.approx(_score(OFF, claim))
    assert _score(OFF, claim) > 0.5


def test_an_alias_of_the_rumor_lets_a_bare_search_answer() -> None:
    aliased = [*LIBRARY, LibraryEntry(SEEDS.rumor_id, SEEDS.claim, (), (), ("恰恰瓜子",))]
    text = "恰恰瓜子 价格"
    assert _score(ScoreParams(), text, aliased) == pytest.approx(_score(OFF, text, aliased))
    assert _score(OFF, text, aliased) > 0.5
    assert _score(ScoreParams(), "瓜子 价格", aliased) == 0.0  # bare, and no alias in it
    got = flags([text, "瓜子 价格"], Matcher().build(aliased).aliases)
    assert got.bare.tolist() == [True, True]
    assert got.exempt.tolist() == [(0 << 32) | 5]  # text 0, rumor s1 (position 5): text 1 not


def test_官方微博_is_navigational_although_jieba_cuts_it() -> None:
    assert "官方微博" in split_words()
    assert flags(["蛟龙号 官方微博 删光", "蛟龙号 微博"], {}).split.tolist() == [True, False]


def test_the_name_charge_skips_intent_words_that_are_claim_words() -> None:
    text = "襄阳 酒店 大火 央视 广州"  # 酒店 is an intent word and the fire's claim word
    intent_gate = ScoreParams(name_gate="intent", bare_scale=1.0)
    no_names = ScoreParams(name_weight=0.0, bare_scale=1.0)
    assert _score(intent_gate, text) < _score(no_names, text) - 0.01  # 0058 charged it
    assert _score(ScoreParams(), text) == pytest.approx(_score(no_names, text))
    nav = "襄阳 酒店 大火 广州 视频"  # 视频 is navigational: 广州, not the rumor's, costs
    assert _score(ScoreParams(), nav) < _score(no_names, nav) - 0.01


def test_every_caller_scores_with_the_rule() -> None:
    m = Matcher().build(BOOK)
    texts = ["恰恰瓜子 价格 一箱", "恰恰瓜子 致癌 价格", "襄阳 酒店 大火 央视"]
    top = m.top(texts, k=1)
    batch = m.match_batch(texts, k=1)
    assert top.text.tolist() == [i for i, b in enumerate(batch) if b]
    assert [round(float(s), 6) for s in top.score] == [b[0].score for b in batch if b]
