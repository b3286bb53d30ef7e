"""The subject-vs-claim test of short typed searches (docs/decisions/0072): a search typed as
terms, holding no navigational or information-seeking word, answers a rumor only when what it
shares with the rumor includes part of the claim (a unit that states something, or two units),
not only the rumor's subject."""

from __future__ import annotations

import pytest

from matching import LibraryEntry, Matcher, ScoreParams
from matching.navigation import predicative, topical
from tests.fixtures.matching import LIBRARY, best_score

TAX = LibraryEntry("t1", "国税总局：继续提高个税起征点没可能，政协委员的呼吁被否", ())
PRIZE = LibraryEntry("p1", "假如本届伦敦奥运会结束时中国还在金牌榜第一，转发本微博送一台手机", ())
STAR = LibraryEntry("s1", "芙蓉姐姐于下午在家中自杀身亡，原因不明", ())
SONY = LibraryEntry("y1", "一代商业帝国索尼申请破产，全球裁员十万", ())
BOOK = [*LIBRARY, TAX, PRIZE, STAR, SONY]
MAIN = ScoreParams()  # the default scorer (0078's unshared test on since 0079): no 0072 test
RULE = ScoreParams(claim_shared=2, claim_predicate=True, claim_loose=True)


def _score(params: ScoreParams, text: str, book: list[LibraryEntry] = BOOK) -> float:
    """The best score ``text`` gets against ``book``."""
    return best_score(params, text, book)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("个人所得税 起征点", True),
        ("伦敦奥运会 奖牌榜", True),
        ("伦敦奥运会 奖牌榜 排名", False),  # an information word: the bare rule's
        ("个人所得税起征点", False),  # typed without spaces: a sentence, not terms
        ("起征点", False),  # one term
        ("刘翔 110米栏 最好 成绩 伦敦 奥运会 决赛 第一轮", False),  # too long for a query
    ],
)
def test_which_searches_are_examined(text: str, expected: bool) -> None:
    assert topical(text, "information") is expected


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("破产", True),  # a verb
        ("没可能", True),
        ("嫩模", True),  # a distinguishing word
        ("105万", True),  # a figure
        ("第79位", True),
        ("起征点", False),  # nouns and names name the subject
        ("个人所得税", False),
        ("伦敦奥运会", False),
        ("刘翔", False),
        ("110米栏", False),  # a number naming a thing
    ],
)
def test_a_predicate_states_something(unit: str, expected: bool) -> None:
    assert predicative(unit) is expected


def test_a_search_sharing_only_the_subject_is_not_answered() -> None:
    for text in ("个人所得税 起征点", "伦敦奥运会 奖牌榜"):
        assert _score(MAIN, text) > 0.78  # main's scorer answers them
        assert _score(RULE, text) == 0.0


def test_a_search_sharing_a_predicate_or_two_units_still_is() -> None:
    for text in ("个税起征点 没可能", "索尼 破产", "伦敦奥运会 金牌榜 手机"):
        assert _score(RULE, text) == pytest.approx(_score(MAIN, text))
        assert _score(RULE, text) > 0.5


def test_a_predicate_the_rumor_words_otherwise_is_lost() -> None:
    """The recall cost, stated: 去世 is not 身亡, so only the subject is shared."""
    assert _score(MAIN, "芙蓉姐姐 去世") > 0.5
    assert _score(RULE, "芙蓉姐姐 去世") == 0.0


def test_an_alias_still_answers() -> None:
    tax = LibraryEntry(TAX.rumor_id, TAX.claim, (), (), ("个人所得税",))
    aliased = [*BOOK[:-4], tax, *BOOK[-3:]]
    assert _score(RULE, "个人所得税 起征点", aliased) > 0.78


def test_every_caller_scores_with_the_rule() -> None:
    m = Matcher(params=RULE).build(BOOK)
    assert m.match("个人所得税 起征点") == []
    assert m.match_batch(["个人所得税 起征点", "索尼 破产"], k=1)[0] == []
