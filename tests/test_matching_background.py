"""The background test of short typed searches (docs/decisions/0075): a search typed as terms,
holding no navigational or information-seeking word, answers a rumor only when a unit it shares
with the rumor is rare in a background of ordinary posts relative to the library (a claim
word), not one ordinary posts carry as often (a subject word). Off by default."""

from __future__ import annotations

import pytest

from matching import LibraryEntry, Matcher, ScoreParams
from matching.background import Background, ratio
from tests.fixtures.matching import LIBRARY, best_score

HOUSE = LibraryEntry("h1", "北京已开征房产税，税率高达百分之五，有房的赶紧卖", ())
MEAL = LibraryEntry("m1", "新闻联播说火车盒饭只要五元，还能免费加饭", ())
BOOK = [*LIBRARY, HOUSE, MEAL]
# ordinary posts: the subject words of HOUSE are common here, MEAL's claim word is not
ORDINARY = [
    "北京发布房产税试点方案征求意见，税率暂未确定",
    "专家解读：房产税立法进展，税率或将分档",
    "北京今天晴转多云，最高气温二十度",
    "周末去北京南站坐火车，人真多",
    "今晚新闻联播报道了春运准备情况",
]
BACKGROUND = Background.from_texts(ORDINARY)
MAIN = ScoreParams()
TEST = ScoreParams(claim_background=0.6, claim_loose=True)  # a toy library: rates are coarse


def _score(params: ScoreParams, text: str, background: Background | None = BACKGROUND) -> float:
    return best_score(params, text, BOOK, background)


def test_the_background_counts_posts_holding_a_word() -> None:
    assert BACKGROUND.size == 5
    assert BACKGROUND.holding("北京") == 3
    assert BACKGROUND.holding("房产税") == 2
    assert BACKGROUND.holding("火车盒饭") == 0
    table = Background.from_counts({"北京": 3, "房产税": 2}, 5)
    assert (table.holding("北京"), table.holding("火车盒饭"), table.size) == (3, 0, 5)


def test_the_ratio_compares_rates_smoothed() -> None:
    assert ratio(0, 100, 1, 100, 0.5) == pytest.approx(1 / 3)
    assert ratio(2, 200, 1, 100, 0.0) == pytest.approx(1.0)
    assert ratio(5, 0, 1, 100, 0.5) == float("inf")  # no background: nothing is a claim word


def test_off_by_default_the_background_changes_nothing() -> None:
    assert MAIN.claim_background == 0.0
    texts = ["北京 房产税 税率", "火车盒饭 五元", "北京 开征 房产税", "今天 天气 不错"]
    plain = Matcher().build(BOOK)
    given = Matcher(background=BACKGROUND).build(BOOK)
    for text in texts:
        assert given.match(text, k=3) == plain.match(text, k=3)


def test_a_search_sharing_only_subject_words_is_not_answered() -> None:
    assert _score(MAIN, "北京 房产税 税率") > 0.78  # main's scorer answers it
    assert _score(TEST, "北京 房产税 税率") == 0.0


def test_a_search_sharing_a_claim_word_still_is() -> None:
    assert _score(TEST, "火车盒饭 五元") == pytest.approx(_score(MAIN, "火车盒饭 五元"))
    assert _score(TEST, "火车盒饭 五元") > 0.78


def test_a_claim_word_ordinary_posts_also_carry_is_lost() -> None:
    """The cost, stated: 开征 states the claim while ordinary posts lack it; once true news
    carries it too (a policy's subject and its claim share words), the search is lost."""
    news = Background.from_texts([*ORDINARY, "多地开征房产税的消息不实", "开征新税须经人大立法"])
    assert _score(TEST, "北京 开征 房产税", BACKGROUND) > 0.78
    assert _score(TEST, "北京 开征 房产税", news) == 0.0


def test_without_a_background_the_setting_does_nothing() -> None:
    for text in ("北京 房产税 税率", "火车盒饭 五元"):
        assert _score(TEST, text, None) == pytest.approx(_score(MAIN, text, None))


def test_long_posts_and_untyped_text_are_not_examined() -> None:
    post = "听说北京已经开征房产税了，税率高达百分之五，有房的朋友赶紧把房子卖了吧"
    assert _score(TEST, post) == pytest.approx(_score(MAIN, post))
    assert _score(TEST, "北京房产税税率") == pytest.approx(_score(MAIN, "北京房产税税率"))
